"""Edge cases in real conversations: where the agent refused, escalated, stated a limit,
checked the customer's identity, or met an exception (nothing found, not available, a request
it did not understand).

Rules find them by the agent's wording (and, for escalations, by tool actions that notify a
manager or transfer the call); a model, when there is one, confirms or corrects each distinct
wording once. Turns of one kind close together (an offer to escalate, the notification, the
goodbye that mentions the manager) make one edge case anchored to all of them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from deputy.builder.asker import Asker
from deputy.builder.sources import Anchor, Transcript, Turn

EdgeKind = Literal["refusal", "escalation", "limit", "identity_check", "exception"]
EDGE_KINDS: tuple[EdgeKind, ...] = ("refusal", "escalation", "limit", "identity_check", "exception")
MERGE_GAP = 4
"""Same-kind turns at most this many turns apart are one edge case."""
NOT_AN_EDGE_CASE = "none of these"

_NUMBER = r"(?:\$\s?\d[\d,.]*|\d[\d,.]*\s?(?:%|percent|dollars?|usd|eur(?:os?)?|credits?|days?|"
_NUMBER += r"weeks?|months?|hours?|items?|times|people|guests|nights?))"

# Checked in this order; the first that matches names the kind of the turn.
_PATTERNS: tuple[tuple[EdgeKind, re.Pattern[str]], ...] = (
    (
        "escalation",
        re.compile(
            r"\b(manager|supervisor|escalat\w*|transfer(?:r?ing|red)? you|human (?:agent|being)|"
            r"live agent|specialist|(?:another|a) (?:colleague|department|team member)|"
            r"(?:hand|pass)(?:ing|ed)? (?:you|this|it) (?:over|on))\b",
            re.IGNORECASE,
        ),
    ),
    (
        "exception",
        re.compile(
            r"\b(nothing (?:was )?found|no (?:results?|matches|availability|records?)|"
            r"(?:is|are|was|were)(?: currently)? (?:not|no longer) available|"
            r"(?:isn't|aren't|wasn't|weren't) available|(?:could ?n[o']t|can ?n[o']t|unable to) "
            r"(?:find|locate)|out of stock|sold out|fully booked|(?:does|do)(?: not|n't) match|"
            r"unavailable|(?:is|are) not able to (?:make|accomm?odate)|"
            r"there (?:are|is|were|was) no|no \w+ (?:that|which) match\w*|has no \w+ available|"
            r"(?:wasn't|was not|weren't|were not) able to (?:update|book|find|change|complete))\b",
            re.IGNORECASE,
        ),
    ),
    (
        "refusal",
        re.compile(
            r"\b(unfortunately|not eligible|ineligible|(?:i'?m|i am|we'?re|we are) (?:sorry|afraid)"
            r"\b[^.?!]*\b(?:can ?not|can't|unable|not able|not allowed|won't)|"
            r"(?:we|i) (?:can ?not|can't|are unable to|am unable to|am not able to|are not able "
            r"to|are not allowed to|am not allowed to|don't|do not) (?:accept|process|offer|refund|"
            r"return|issue|give|approve|cancel|change|exchange|extend|waive|allow|do that|help "
            r"with that)|more than \d+ (?:days|weeks|months)|only (?:able to|allowed to|"
            r"possible)|against (?:our|the) policy|not (?:possible|permitted|allowed))\b",
            re.IGNORECASE,
        ),
    ),
    (
        "identity_check",
        re.compile(
            r"\b(verif(?:y|ied|ication) (?:your |the |of )?(?:identity|account|name|e-?mail|"
            r"details|information|ownership)|identity|user ?name|e-?mail address|zip ?code|"
            r"postal code|account (?:id|number)|date of birth|security (?:question|answer|code)|"
            r"last (?:four|4) digits|pin(?: number)?)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "limit",
        re.compile(
            rf"\b(?:up to|at most|maximum(?: of)?|max(?:imum)?|no more than|not more than|less "
            rf"than|at least|within|over|under|exceed\w*|limit(?:ed)? to|only) {_NUMBER}|"
            rf"\b(?:limit|maximum|minimum|cap) (?:is|of) {_NUMBER}|"
            rf"\b(?:expire\w*|valid|last\w*) (?:for|after|in|within) {_NUMBER}",
            re.IGNORECASE,
        ),
    ),
    (
        "exception",
        re.compile(
            r"\b(however|except|unless|only if|in that case|instead|(?:don't|do not) "
            r"(?:quite )?understand|not sure what you mean)\b",
            re.IGNORECASE,
        ),
    ),
)
_ACTION_ESCALATION = re.compile(
    r"\b(manager|supervisor|escalat\w*|transferr?\w*|human|specialist)\b", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class EdgeCase:
    """An agent turn (or a run of close turns) of one kind, anchored to the transcript turns,
    with the procedure of the intent its conversation was grouped under. `cue` is the wording
    that made it one."""

    kind: EdgeKind
    text: str
    anchor: Anchor
    procedure: str | None
    cue: str = ""


@dataclass(frozen=True, slots=True)
class _Hit:
    kind: EdgeKind
    turn: Turn
    cue: str


def classify(turn: Turn) -> tuple[EdgeKind, str] | None:
    """The kind of edge case a turn is (and the words that say so), by rule."""
    if turn.speaker == "action":
        found = _ACTION_ESCALATION.search(f"{turn.action or ''} {turn.text}")
        return ("escalation", found.group(0)) if found else None
    if turn.speaker != "agent":
        return None
    for kind, pattern in _PATTERNS:
        found = pattern.search(turn.text)
        if found:
            return kind, found.group(0)
    return None


def _previous_customer(transcript: Transcript, turn: Turn) -> str:
    earlier = [t for t in transcript.turns if t.index < turn.index and t.speaker == "customer"]
    return earlier[-1].text if earlier else ""


class EdgeJudge:
    """Asks the model (at most `budget` questions, one per distinct wording) whether a rule's
    edge case is one, and of which kind."""

    def __init__(self, asker: Asker, budget: int) -> None:
        self.asker = asker
        self.budget = budget
        self.answers: dict[str, EdgeKind | None] = {}

    async def judge(self, transcript: Transcript, hit: _Hit) -> EdgeKind | None:
        if self.asker.model is None:
            return hit.kind
        key = " ".join(hit.turn.text.lower().split())
        if key in self.answers:
            return self.answers[key]
        if self.budget <= 0:
            return hit.kind
        self.budget -= 1
        options = [hit.kind, *(k for k in EDGE_KINDS if k != hit.kind), NOT_AN_EDGE_CASE]
        context = (
            f"customer: {_previous_customer(transcript, hit.turn)}\n"
            f"{hit.turn.speaker}: {hit.turn.text}"
        )
        answer = await self.asker.choose(
            f"In the last turn, does the agent refuse, escalate to a human, state a limit, "
            f"check the customer's identity, or handle an exception? (The words "
            f"'{hit.cue}' suggest {hit.kind.replace('_', ' ')}.)",
            context,
            options,
        )
        kind = next((k for k in EDGE_KINDS if k == answer), None)
        result = hit.kind if answer is None else kind
        self.answers[key] = result
        return result


async def find_edge_cases(
    transcript: Transcript, procedure: str | None, judge: EdgeJudge
) -> list[EdgeCase]:
    """The edge cases of one conversation, in turn order."""
    hits: list[_Hit] = []
    for turn in transcript.turns:
        found = classify(turn)
        if found is None:
            continue
        kind = await judge.judge(transcript, _Hit(found[0], turn, found[1]))
        if kind is not None:
            hits.append(_Hit(kind, turn, found[1]))
    runs: list[list[_Hit]] = []
    for hit in hits:
        same_kind = [run for run in runs if run[-1].kind == hit.kind]
        if same_kind and hit.turn.index - same_kind[-1][-1].turn.index <= MERGE_GAP:
            same_kind[-1].append(hit)
        else:
            runs.append([hit])
    cases = [
        EdgeCase(
            kind=run[0].kind,
            text=next((h.turn.text for h in run if h.turn.speaker == "agent"), run[0].turn.text),
            anchor=transcript.anchor(run[0].turn.index, run[-1].turn.index),
            procedure=procedure,
            cue=run[0].cue,
        )
        for run in runs
    ]
    return sorted(cases, key=lambda case: case.anchor.turns[0])
