"""What customers come for: conversations grouped by their opening request, each group matched
to a drafted procedure (or left as an intent the documents do not cover) and given a title.

The opening request is the first customer turn with any content word (greetings and "hello?"
are skipped). A conversation is compared with the others by that turn plus, at half weight, the
customer's next two turns: a bare "I need a taxi" says little, the destination and pickup that
follow say which request it is. Groups come from average-linkage clustering of TF-IDF vectors
(`mine_text`); a group is matched to the procedure whose title and trigger share most words
with its openings, helped by the tools its conversations used."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deputy.builder.asker import Asker
from deputy.builder.mine_text import (
    Matrix,
    TfIdf,
    average_linkage,
    content_words,
    cosine,
    normalise,
)
from deputy.builder.sources import Transcript, Turn
from deputy.domain.spec import Procedure

CLUSTER_THRESHOLD = 0.18
"""Average cosine two groups of conversations need to merge. Tuned on STAR (labels used only to
measure): over the 673 dialogues of its 17 tasks the groups agree with the tasks at an adjusted
Rand index of 0.84 (purity 0.92), and the dialogues of one task mostly stay in one group."""
BEHAVIOUR_THRESHOLD = 0.6
"""Average cosine of what the agents did (tools, canned replies) for two groups to merge."""
FOLLOW_UP_WEIGHT = 0.5
ENTITY_WORDS = 3
FOLLOW_UP_TURNS = 2
MATCH_THRESHOLD = 0.2
"""The score a group needs to be matched to a procedure (cosine of words + half the share of
the procedure's tools its conversations used)."""
NONE_OF_THESE = "none of these"


@dataclass(frozen=True, slots=True)
class Opening:
    """A conversation's opening request: its first customer turn with content words."""

    transcript: Transcript
    turn: Turn
    words: tuple[str, ...]
    follow_up: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Group:
    """Openings that ask for the same thing, their characteristic words (surface forms) and the
    procedure they were matched to."""

    openings: tuple[Opening, ...]
    terms: tuple[str, ...]
    procedure: str | None


def opening(transcript: Transcript) -> Opening | None:
    """The first customer turn with content words. Words of the short values the agent passed
    to its tools (a place, a name, a date; not free-text descriptions) are left out of the
    comparison: they say who the customer is, not what they ask for. The tools the agent used
    count as words too."""
    values = {
        word
        for turn in transcript.turns
        if turn.speaker == "action"
        for value in turn.arguments.values()
        if len(value.split()) <= ENTITY_WORDS
        for word in content_words(value)
    }
    actions = tuple(
        sorted(
            {
                f"action:{_name(t.action)}"
                for t in transcript.turns
                if t.speaker == "action" and t.action
            }
        )
    )
    customer = [turn for turn in transcript.turns if turn.speaker == "customer"]
    for position, turn in enumerate(customer):
        words = [w for w in content_words(turn.text) if w not in values]
        if words:
            later = customer[position + 1 : position + 1 + FOLLOW_UP_TURNS]
            follow_up = [w for t in later for w in content_words(t.text) if w not in values]
            return Opening(transcript, turn, tuple(words), (*follow_up, *actions))
    return None


def _vectors(openings: Sequence[Opening], tfidf: TfIdf) -> Matrix:
    rows = [tfidf.vector(o.words) + tfidf.vector(o.follow_up, FOLLOW_UP_WEIGHT) for o in openings]
    return normalise(np.stack(rows) if rows else np.zeros((0, len(tfidf.vocabulary))))


def _surface_forms(openings: Sequence[Opening]) -> dict[str, str]:
    """The most frequent written form of each stem in the openings ("rid" → "ride")."""
    forms: dict[str, Counter[str]] = {}
    for item in openings:
        for word in re.findall(r"[^\W\d_]+", item.turn.text.lower()):
            stems = content_words(word)
            if stems:
                forms.setdefault(stems[0], Counter())[word] += 1
    return {stem: counter.most_common(1)[0][0] for stem, counter in forms.items()}


def _procedure_words(procedure: Procedure) -> list[str]:
    return content_words(f"{procedure.title} {procedure.title} {procedure.when}")


def _tools_used(openings: Sequence[Opening]) -> set[str]:
    return {
        _name(turn.action)
        for o in openings
        for turn in o.transcript.turns
        if turn.speaker == "action" and turn.action
    }


def _name(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _ranked_procedures(
    openings: Sequence[Opening], procedures: Sequence[Procedure], tfidf: TfIdf, centroid: Matrix
) -> list[tuple[float, Procedure]]:
    used = _tools_used(openings)
    ranked: list[tuple[float, Procedure]] = []
    for procedure in procedures:
        score = cosine(centroid, tfidf.vector(_procedure_words(procedure)))
        tools = {_name(s.tool) for s in procedure.steps if s.tool}
        if tools and used:
            score += 0.5 * len(tools & used) / len(tools)
        ranked.append((score, procedure))
    return sorted(ranked, key=lambda pair: -pair[0])


async def _match(
    openings: Sequence[Opening],
    procedures: Sequence[Procedure],
    tfidf: TfIdf,
    centroid: Matrix,
    asker: Asker,
) -> str | None:
    ranked = _ranked_procedures(openings, procedures, tfidf, centroid)
    by_rule = ranked[0][1].id if ranked and ranked[0][0] >= MATCH_THRESHOLD else None
    candidates = [p for score, p in ranked[:3] if score > 0]
    if asker.model is None or not candidates:
        return by_rule
    titles = {p.title: p.id for p in candidates}
    options = [*titles, NONE_OF_THESE]
    if by_rule is None:  # the rule's answer first: a model that hesitates keeps it
        options = [NONE_OF_THESE, *titles]
    sample = "\n".join(f"- {o.turn.text}" for o in openings[:8])
    listing = "\n".join(f"- {p.title}: {p.when}" for p in candidates)
    answer = await asker.choose(
        "Which procedure handles what these customers ask for?",
        f"Customers open with:\n{sample}\n\nProcedures:\n{listing}",
        options,
    )
    if answer is None:
        return by_rule
    return titles.get(answer)


async def _title(openings: Sequence[Opening], terms: Sequence[str], asker: Asker) -> str:
    sample = "\n".join(f"- {o.turn.text}" for o in openings[:8])
    phrased = await asker.phrase(
        "Give a short title (2 to 6 words, like 'Book a ride') for what these customers ask for.",
        f"Customers open with:\n{sample}",
        max_length=80,
    )
    if phrased:
        return phrased
    return ", ".join(terms[:3]).capitalize() if terms else "Other requests"


def _behaviour(transcript: Transcript) -> list[str]:
    """What the agent did: its tools and the labels of its canned replies."""
    return [
        f"{turn.speaker}:{_name(turn.action)}"
        for turn in transcript.turns
        if turn.action and turn.speaker in ("agent", "action")
    ]


def _merge_by_behaviour(groups: list[list[int]], openings: Sequence[Opening]) -> list[list[int]]:
    """Groups whose agents did the same things (same tools, same canned replies, by average
    cosine of TF-IDF profiles) merged: two wordings of one request lead to one procedure."""
    documents = [_behaviour(o.transcript) for o in openings]
    if not any(documents):
        return groups
    matrix = TfIdf(documents).matrix(documents)
    centroids = normalise(np.stack([matrix[members].mean(axis=0) for members in groups]))
    merged = [
        sorted(i for g in together for i in groups[g])
        for together in average_linkage(centroids, BEHAVIOUR_THRESHOLD)
    ]
    return sorted(merged, key=lambda group: (-len(group), group[0]))


@dataclass(frozen=True, slots=True)
class TitledGroup:
    group: Group
    title: str


async def group_openings(
    openings: Sequence[Opening], procedures: Sequence[Procedure], *, asker: Asker
) -> list[TitledGroup]:
    """Openings grouped by request, largest group first, each titled and matched."""
    documents = [list(o.words) + list(o.follow_up) for o in openings]
    documents.extend(_procedure_words(p) for p in procedures)
    tfidf = TfIdf(documents)
    vectors = _vectors(openings, tfidf)
    surface = _surface_forms(openings)
    titled: list[TitledGroup] = []
    for members in _merge_by_behaviour(average_linkage(vectors, CLUSTER_THRESHOLD), openings):
        chosen = tuple(openings[i] for i in members)
        centroid = vectors[members].mean(axis=0)
        opening_centroid = _vectors(
            [Opening(o.transcript, o.turn, o.words, ()) for o in chosen], tfidf
        ).mean(axis=0)
        terms = tuple(surface.get(t, t) for t in tfidf.top_terms(opening_centroid, 5))
        procedure = await _match(chosen, procedures, tfidf, centroid, asker)
        group = Group(chosen, terms, procedure)
        title = next((p.title for p in procedures if p.id == procedure), None)
        titled.append(TitledGroup(group, title or await _title(chosen, terms, asker)))
    return titled
