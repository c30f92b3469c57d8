"""What one instruction of a procedure says, by its wording: a precondition to check, details
to ask the customer for, a confirmation, what happens after the action, a hand-off, a tool to
call, something to tell the customer, or a standing rule.

    read_item(item, matcher)   # -> (Reading(kind="check", condition=..., noun="order"), ...)

The patterns are plain English support-document phrasing, not any one business's:

- check: "An order can only be cancelled if its status is 'pending'", "Refunds are only
  possible when ...", "check / verify / make sure that ..."; "If X, deny the request" is a
  check whose yes branch refuses (`refuse_when_true`);
- ask: "The customer needs to provide / confirm / choose X, Y and Z", "Ask (the caller) for X",
  "Collect / obtain X"; quoted alternatives next to a detail ("either 'a' or 'b'") are its
  allowed values;
- confirm: "obtain explicit confirmation", "ask for confirmation", "confirm the details";
  "remind the customer to confirm they ..." adds a line to the confirmation question;
- outcome: "After (the customer's) confirmation, ..." (said once the action is done);
- handoff: transfer / escalate / hand over ... to a human, manager, supervisor, team; with an
  "if / when" clause it is conditional; a quoted message is what the agent says;
- call: a tool named verbatim ("make a tool call to transfer_to_human_agents");
- say: "Tell / inform / explain / remind / advise the customer ...";
- rule: other normative sentences (must, never, only, cannot...), kept as procedure policies;
- note: the rest (descriptions).
A sentence may give several readings (an ask that also says "only", a hand-off with a tool).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from deputy.builder.outline import item_kind
from deputy.builder.rules import is_rule_sentence
from deputy.builder.sources import OutlineItem
from deputy.builder.tool_match import ToolMatcher

ReadingKind = Literal[
    "check", "ask", "confirm", "outcome", "handoff", "call", "say", "rule", "note"
]

_CUSTOMER = r"(?:the\s+)?(?:user|customer|caller|client|member|account holder|guest|patient)s?"
_ONLY_IF = re.compile(
    r"^(?P<subject>[^,]+?)\s+(?:can|may|must|should|will|is to|are to)\s+only\s+be\s+"
    r"(?P<verb>\w+)(?:\s+\w+)?\s+(?:if|when|after|once(?!\s+(?:per|a|an|every|each|in)\b))\s+(?P<cond>[^;]+?)(?=,\s*(?:and|but)\b|[;.]|$)"
    r"|^(?P<subject2>[^,]+?)\s+(?:is|are)\s+only\s+(?:possible|allowed|permitted|available)\s+"
    r"(?:if|when|once)\s+(?P<cond2>[^;]+?)(?=,\s*(?:and|but)\b|[;.]|$)",
    re.IGNORECASE,
)
_CHECK_THAT = re.compile(
    r"\b(?:check|verify|make sure|ensure|confirm)\s+(?:that|whether|if)\s+"
    r"(?P<cond>[^;]+?)(?=,\s*(?:and|but|then)\b|[;.]|$)",
    re.IGNORECASE,
)
_DENY_IF = re.compile(
    r"^(?:if|when)\s+(?P<cond>[^,]+),\s*(?:then\s+)?(?:you\s+(?:must|should)\s+)?"
    r"(?:deny|refuse|decline|reject|do not|don't|never|cannot|can't)\b",
    re.IGNORECASE,
)
_ASK = re.compile(
    rf"\b{_CUSTOMER}\s+(?:needs?|has|have|must|should|is required|are required|will need)?"
    r"\s*(?:to\s+)?(?:(?:can|may)\s+(?:only\s+)?)?(?:provide|confirm|give|supply|specify|state|"
    r"choose|select|pick|tell (?:us|you))\s+(?P<what>.+)$"
    r"|^(?:please\s+)?(?:ask|request)\s+(?:the\s+\w+\s+)?(?:for|to\s+(?:provide|confirm|give|"
    r"tell you|choose))\s+(?P<what2>.+)$"
    r"|^(?:collect|obtain|gather|take down|note down|record)\s+(?P<what3>.+)$",
    re.IGNORECASE,
)
_CONFIRM = re.compile(
    r"\b(?:explicit\s+)?(?:user\s+|customer\s+)?confirmation\b|\bask\s+(?:the\s+\w+\s+)?"
    r"(?:for|to)\s+confirm\b|\bconfirm\s+(?:all\s+)?the\s+details\b|\bmust\s+confirm\b",
    re.IGNORECASE,
)
_REMIND = re.compile(
    rf"\bremind\s+{_CUSTOMER}\s+to\s+confirm\s+(?:that\s+)?(?P<what>[^.;]+)", re.IGNORECASE
)
_OUTCOME = re.compile(
    rf"^(?:after|once|upon|following)\s+(?:the\s+)?(?:{_CUSTOMER}(?:'s)?\s+)?confirmation,?"
    r"\s*(?P<rest>.+)$",
    re.IGNORECASE,
)
_HANDOFF = re.compile(
    r"\b(?:transfer|escalate|hand\s+(?:\w+\s+)?(?:over|off)|route|refer|pass)\w*\b.*?\b(?:human|"
    r"manager|supervisor|specialist|team|department|colleague|tier\s*\d|live agent)s?\b",
    re.IGNORECASE,
)
_CONDITION = re.compile(
    r"\b(?:if and only if|only if|if|when|whenever|in case|unless)\s+(?P<cond>[^,;.]+)",
    re.IGNORECASE,
)
_SAY = re.compile(
    r"^(?:please\s+)?(?:tell|inform|let|explain to|explain|advise|remind|notify|"
    r"apologi[sz]e to|apologi[sz]e|thank|greet|say to|say)\s+"
    rf"(?:{_CUSTOMER}\s+)?(?:know\s+)?(?:that\s+)?(?P<what>.+)$",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"'([^']{2,300})'|\"([^\"]{2,300})\"|\u201c([^\u201d]{2,300})\u201d")
_TEAM = re.compile(r"\bthe ([a-z][a-z ]{1,40}?) (?:team|department|desk|queue)\b", re.IGNORECASE)
_REFUSE_WORDS = re.compile(r"\b(?:only|never|not|cannot|can't|no other|single)\b", re.I)


@dataclass(frozen=True, slots=True)
class SlotPhrase:
    """A detail the customer gives, as the document words it, with its allowed values."""

    phrase: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reading:
    """One thing an item says. `condition`: a yes/no question (a check, a conditional hand-off);
    `noun`: the entity a check is about ("order"); `clause`: the rule in the document's words
    (for refusals and triggers); `slots`: details to ask for; `tool`: a tool it names; `text`:
    what to say (say, outcome, hand-off message, an addition to the confirmation) or a check's
    condition as written; `queue`: the team a hand-off goes to."""

    kind: ReadingKind
    item: OutlineItem
    condition: str = ""
    noun: str = ""
    clause: str = ""
    refuse_when_true: bool = False
    slots: tuple[SlotPhrase, ...] = ()
    tool: str | None = None
    text: str = ""
    queue: str = ""


def quoted(text: str) -> tuple[str, ...]:
    """The quoted strings of `text`, in order."""
    return tuple(next(g for g in m.groups() if g) for m in _QUOTED.finditer(text))


def to_customer(text: str) -> str:
    """Third-person wording about the customer turned to the second person."""
    text = re.sub(rf"\b{_CUSTOMER}'s\b", "your", text, flags=re.IGNORECASE)
    text = re.sub(rf"\b{_CUSTOMER}\b", "you", text, flags=re.IGNORECASE)
    text = re.sub(r"\bthey have\b", "you have", text, flags=re.IGNORECASE)
    text = re.sub(r"\bthey\b", "you", text, flags=re.IGNORECASE)
    text = re.sub(r"\btheir\b", "your", text, flags=re.IGNORECASE)
    text = re.sub(r"\bthem\b", "you", text, flags=re.IGNORECASE)
    return text.strip()


def _top_level_split(text: str) -> list[str]:
    """`text` split at commas and "and"s that are outside parentheses and quotes."""
    parts: list[str] = []
    depth = 0
    quote = ""
    start = 0
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            quote = "" if char == quote and not text[index + 1 : index + 2].isalnum() else quote
        elif char in "'\"" and (index == 0 or not text[index - 1].isalnum()):
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif depth == 0 and (char == "," or text.startswith(" and ", index)):
            parts.append(text[start:index])
            index += 1 if char == "," else 5
            start = index
            continue
        index += 1
    parts.append(text[start:])
    return [re.sub(r"^\s*(?:and|or)\s+", "", part).strip() for part in parts if part.strip()]


def _split_details(what: str) -> tuple[SlotPhrase, ...]:
    """ "the order id and the reason (either 'a' or 'b') for cancellation" → order id, reason;
    "the reason: 'a', 'b' or 'c'" → reason with three values."""
    what = re.split(r"\s+(?:to\s+(?:pay|receive|cover|be)|so that|before|in order)\b", what)[0]
    listed: tuple[str, ...] = ()
    if ":" in what and len(quoted(what.split(":", 1)[1])) >= 2:
        what, tail = what.split(":", 1)
        listed = quoted(tail)
    parts = _top_level_split(what.strip(" ."))
    found: list[SlotPhrase] = []
    for number, part in enumerate(parts, start=1):
        values = quoted(part) if re.search(r"\(|either|one of", part) else ()
        if number == len(parts) and listed:
            values = listed
        phrase = re.sub(r"\([^)]*\)", " ", part)
        phrase = re.sub(r"\s+", " ", phrase).strip(" .,:;")
        if phrase and len(phrase.split()) <= 12 and not quoted(phrase):
            found.append(SlotPhrase(phrase, values if len(values) >= 2 else ()))
    return tuple(found)


def _question(condition: str, noun: str) -> str:
    """A yes/no question from a condition clause ("its status is 'pending'")."""
    clause = condition.strip().rstrip(".")
    if noun:
        clause = re.sub(r"\bits\b", f"the {noun}'s", clause, flags=re.IGNORECASE)
        clause = re.sub(r"\bit\b", f"the {noun}", clause, flags=re.IGNORECASE)
    words = clause.split()
    for index, word in enumerate(words):
        lowered = word.lower()
        if index and lowered in {"is", "are", "was", "were", "can", "will", "has", "have"}:
            head, rest = " ".join(words[:index]), " ".join(words[index + 1 :])
            if lowered in {"has", "have"}:
                return f"Does {head} have {rest}?"
            return f"{lowered.capitalize()} {head} {rest}?"
    return f"Is it true that {clause}?"


def _noun(subject: str) -> str:
    words = re.sub(r"^(?:an?|the|each|every|any|your|their)\s+", "", subject.strip(), flags=re.I)
    return words.lower().rstrip("s") if words and len(words.split()) <= 3 else ""


def _required(condition: str) -> str:
    """A condition as a requirement: "the line is active" → "the line must be active"."""
    replaced = re.sub(r"\b(?:is|are)\b", "must be", condition.strip(), count=1)
    return re.sub(r"\b(?:has|have)\b", "must have", replaced, count=1)


def _subject_noun(clause: str) -> str:
    """The thing a condition is about ("the line is active" → "line")."""
    found = re.match(
        r"^(?:the|its|their|your)\s+(\w+(?:\s+\w+)?)\s+(?:is|are|has|have|was)\b",
        clause.strip(),
        re.I,
    )
    return _noun(found.group(1)) if found else ""


def _check(item: OutlineItem) -> Reading | None:
    text = item.text
    only = _ONLY_IF.search(text)
    if only:
        subject = only.group("subject") or only.group("subject2") or ""
        condition = only.group("cond") or only.group("cond2") or ""
        refers_back = re.search(r"\b(?:its|it)\b", condition, re.IGNORECASE)
        noun = _noun(subject) if refers_back else _subject_noun(condition)
        return Reading(
            "check",
            item,
            condition=_question(condition, noun),
            noun=noun,
            clause=only.group(0).strip().rstrip("."),
            text=condition,
        )
    deny = _DENY_IF.search(text)
    if deny:
        condition = deny.group("cond")
        return Reading(
            "check",
            item,
            condition=_question(condition, ""),
            clause=f"this is not possible when {condition.strip()}",
            refuse_when_true=True,
            text=condition,
        )
    that = _CHECK_THAT.search(text)
    if that and not _ASK.search(text):
        condition = that.group("cond")
        return Reading(
            "check",
            item,
            condition=_question(condition, ""),
            noun=_subject_noun(condition),
            clause=_required(condition),
            text=condition,
        )
    return None


def read_item(item: OutlineItem, matcher: ToolMatcher) -> tuple[Reading, ...]:
    """Every reading of `item` (at least one: `note` when nothing else fits)."""
    text = item.text
    if item_kind(item) == "table_row":
        text = ", ".join(detail.split(": ", 1)[-1] for detail in item.details) or text
    found: list[Reading] = []
    outcome = _OUTCOME.match(text)
    if outcome:
        rest = outcome.group("rest")
        return (Reading("outcome", item, text=rest[:1].upper() + rest[1:]),)
    if _HANDOFF.search(text):
        condition = _CONDITION.search(text)
        message = quoted(text)
        named = matcher.named(text)
        team = _TEAM.search(text)
        found.append(
            Reading(
                "handoff",
                item,
                condition=_question(condition.group("cond"), "") if condition else "",
                text=message[-1] if message else "",
                tool=named.name if named else None,
                clause=condition.group("cond").strip() if condition else "",
                queue=team.group(1).strip().lower() if team else "",
            )
        )
        return tuple(found)
    check = _check(item)
    if check is not None:
        found.append(check)
    remind = _REMIND.search(text)
    ask = None if remind else _ASK.search(text)
    if ask and check is None:
        what = ask.group("what") or ask.group("what2") or ask.group("what3") or ""
        slots = _split_details(what)
        if slots:
            found.append(Reading("ask", item, slots=slots))
            if _REFUSE_WORDS.search(text):
                found.append(Reading("rule", item))
    if remind:
        found.append(Reading("confirm", item, text=to_customer(remind.group("what"))))
    elif _CONFIRM.search(text) and not ask:
        found.append(Reading("confirm", item))
    named = matcher.named(text)
    if named is not None and not found:
        found.append(Reading("call", item, tool=named.name))
    say = _SAY.match(text)
    if say and not found:
        message = quoted(text)
        what = message[-1] if message else to_customer(say.group("what"))
        found.append(Reading("say", item, text=what[:1].upper() + what[1:]))
    if not found and item.hint == "step" and item_kind(item) == "list_item":
        match = matcher.best(text)
        if match is not None:
            found.append(Reading("call", item, tool=match.tool.name))
    if not found and is_rule_sentence(text):
        found.append(Reading("rule", item))
    return tuple(found) or (Reading("note", item),)
