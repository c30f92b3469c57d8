"""Patterns in failures: clusters by cause and intent, and causes that got worse since the
previous period.

Failed evaluations are grouped by cause, then, within a cause, by what the customers asked. Each
intent is reduced to its content terms (`deputy.improve.text.terms`, without the words every
support request has) that at least one other failing intent of the cause shares: a term only
one conversation uses cannot link it to another. Intents are then taken in a fixed order
(conversation id) and each joins the cluster whose core (the terms at least half its members
have) it overlaps most, when the overlap is at least half of the smaller of the two term sets;
otherwise it starts a cluster. Deterministic; no model.

A cluster's label is its most typical intent (the one covering most of the core, the shortest
on ties) when that intent has no term beyond the core; otherwise the core's words followed by
"requests" ("exchange the office chair I got" among other exchanges: "exchange requests").
Ids are `c1`, `c2`... by size (largest first), then cause, then label."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from deputy.domain.improvement import (
    FAILURE_CAUSES,
    ConversationEvaluation,
    FailureCause,
    FailureCluster,
    PeriodRegression,
)
from deputy.improve.text import SUPPORT_WORDS, terms

MIN_OVERLAP = 0.5
"""Share of the smaller term set an intent must share with a cluster's core to join it."""


@dataclass
class _Group:
    members: list[tuple[ConversationEvaluation, frozenset[str]]] = field(default_factory=list)

    def core(self) -> frozenset[str]:
        counts = Counter(term for _, words in self.members for term in words)
        return frozenset(term for term, n in counts.items() if 2 * n >= len(self.members))

    def label(self) -> str:
        """The most typical intent when it says nothing beyond what the cluster shares (or the
        cluster is one conversation); else what they share: "exchange requests"."""
        core = self.core()
        best = min(
            self.members,
            key=lambda member: (-len(member[1] & core), len(member[0].intent), member[0].intent),
        )[0].intent
        if len(self.members) == 1 or not core or terms(best, drop=SUPPORT_WORDS) <= core:
            return best or "unlabelled requests"
        shared = self._surface(best, core)
        return f"{' '.join(shared)} requests" if shared else best

    def _surface(self, intent: str, core: frozenset[str]) -> list[str]:
        """The core's words in the order `intent` has them, each in the form the members use
        most ("exchange", not "exchanges")."""
        forms: Counter[tuple[str, str]] = Counter()
        for evaluation, _ in self.members:
            for word in evaluation.intent.lower().split():
                forms.update((term, word) for term in terms(word) & core)
        words: list[str] = []
        for word in intent.lower().split():
            for term in sorted(terms(word) & core):
                usual = max(
                    (form for (t, form) in forms if t == term),
                    key=lambda form: (forms[(term, form)], -len(form), form),
                )
                if usual not in words:
                    words.append(usual)
        return words


def _overlap(words: frozenset[str], core: frozenset[str]) -> float:
    if not words or not core:
        return 0.0
    return len(words & core) / min(len(words), len(core))


def _group(evaluations: Sequence[ConversationEvaluation]) -> list[_Group]:
    """Groups of one cause's failures (see the module)."""
    ordered = sorted(evaluations, key=lambda e: e.conversation_id)
    raw = [terms(e.intent, drop=SUPPORT_WORDS) for e in ordered]
    frequency = Counter(term for words in raw for term in words)
    groups: list[_Group] = []
    for evaluation, words in zip(ordered, raw, strict=True):
        shared = frozenset(term for term in words if frequency[term] >= 2)
        scored = [(_overlap(shared, group.core()), index) for index, group in enumerate(groups)]
        best = max(scored, key=lambda item: (item[0], -item[1]), default=(0.0, -1))
        if best[0] >= MIN_OVERLAP:
            groups[best[1]].members.append((evaluation, shared))
        else:
            groups.append(_Group([(evaluation, shared)]))
    return groups


def cluster_failures(evaluations: Sequence[ConversationEvaluation]) -> list[FailureCluster]:
    """The failed evaluations' clusters, largest first (see the module)."""
    total = len(evaluations)
    found: list[tuple[FailureCause, _Group]] = []
    for cause in FAILURE_CAUSES:
        failed = [e for e in evaluations if e.failed and e.cause == cause]
        found.extend((cause, group) for group in _group(failed))
    rank = {cause: index for index, cause in enumerate(FAILURE_CAUSES)}
    found.sort(key=lambda item: (-len(item[1].members), rank[item[0]], item[1].label()))
    return [
        FailureCluster(
            id=f"c{number}",
            cause=cause,
            label=group.label(),
            conversation_ids=tuple(e.conversation_id for e, _ in group.members),
            share=len(group.members) / total,
        )
        for number, (cause, group) in enumerate(found, start=1)
    ]


def _failure_rates(
    evaluations: Sequence[ConversationEvaluation],
) -> tuple[Counter[FailureCause], int]:
    counts: Counter[FailureCause] = Counter(
        e.cause for e in evaluations if e.failed and e.cause is not None
    )
    return counts, len(evaluations)


def period_regressions(
    current: Sequence[ConversationEvaluation],
    previous: Sequence[ConversationEvaluation],
    min_rise: float = 0.1,
) -> list[PeriodRegression]:
    """The causes whose failure rate (failures with that cause / conversations evaluated) rose
    by at least `min_rise` since the previous period, largest rise first. Without conversations
    in either period there is nothing to compare: no regression."""
    now, now_total = _failure_rates(current)
    before, before_total = _failure_rates(previous)
    if not now_total or not before_total:
        return []
    found = []
    for cause in FAILURE_CAUSES:
        current_rate, previous_rate = now[cause] / now_total, before[cause] / before_total
        if current_rate - previous_rate >= min_rise - 1e-9:
            found.append(
                PeriodRegression(
                    cause=cause,
                    previous_rate=previous_rate,
                    current_rate=current_rate,
                    previous_failures=before[cause],
                    current_failures=now[cause],
                )
            )
    found.sort(key=lambda r: -(r.current_rate - r.previous_rate))
    return found
