"""Sentences → standing rules: policies, escalation rules and the limits the runtime enforces.

    draft = rule_from_sentence("Refunds over $200 need a manager.", anchor,
                               tools=tools, procedure_ids=("issue_refund", "cancel_order"))
    draft.policies        # Policy(id="refunds_over_200_need_manager", limits=(max 200 on
                          #        issue_refund.amount,), applies_to=("issue_refund",))
    draft.escalation_rules  # EscalationRule(when="Refunds over $200.")

What counts as a rule: normative wording ("must", "never", "only", "should", "do not", "deny",
"not acceptable", "need a manager"...), an imperative ("Be polite", "Always greet..."), an
amount with a human ("Over $100; who approves: a manager", a row of a limits table), or any
sentence the client gave as a constraint (anchor kind "constraint" or "goal"). A description
("Each order has a status") is not one: the function returns None.

- An amount ("over $200", "more than 50 EUR", "up to $100") on a sentence about a tool that
  takes an amount-like argument (amount, total, price, refund...) becomes a `PolicyLimit` on
  that argument: the amount beyond which the rule forbids or escalates is the `max`, "at least"
  gives a `min`.
- A human in the sentence (human, manager, supervisor, specialist, team, approval; transfer or
  escalate) makes an `EscalationRule` whose `when` is the sentence's condition ("Refunds over
  $200", "the request cannot be handled within the scope of your actions"); the policy stays
  too, so the model reads the rule in every mode.
- `applies_to` holds the procedures the sentence's subject is about: "Refunds over $200 need a
  manager" → procedures whose id or tools speak of refunds; "Exchange or modify order tools can
  only be called once" → the exchange and modify procedures. A subject that is the agent ("you
  should", "we never") or matches nothing leaves the policy global. `scope` overrides this
  (a sentence read inside a procedure's own section applies to that procedure).
- Ids are snake_case from the sentence's first content words ("never_" for prohibitions),
  unique against `taken` (a `_2`, `_3` suffix).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from deputy.builder.sources import Anchor, ToolDescription
from deputy.builder.tool_match import ACTION_VERBS, ToolMatcher, terms
from deputy.domain.spec import EscalationRule, Policy, PolicyLimit
from deputy.domain.spec.operations import Priority

_NORMATIVE = re.compile(
    r"\b(?:must|mustn't|never|only|should|shouldn't|shall|always|cannot|can't|can not|"
    r"do not|don't|does not|doesn't|may not|not (?:be )?(?:allowed|permitted|acceptable|"
    r"accepted|possible)|forbidden|prohibited|required|requires?|deny|denied|refuse|decline|"
    r"at most|at least|no more than|no less than|has to|have to|need(?:s)? (?:a |an )?"
    r"(?:human|manager|supervisor|approval)|is not to|are not to|nothing else|"
    r"can (?:only )?be \w+ (?:to|into|for|with))\b",
    re.IGNORECASE,
)
_NEGATIVE = re.compile(
    r"\b(?:never|must not|mustn't|should not|shouldn't|do not|don't|cannot|can't|can not|"
    r"may not|not (?:be )?(?:allowed|permitted|acceptable|accepted)|forbidden|prohibited|"
    r"deny|refuse)\b|^no\s",
    re.IGNORECASE,
)
_IMPERATIVE = re.compile(
    r"^(?:always\s+|never\s+|please\s+)?(?:be|do|don't|avoid|keep|use|ask|check|confirm|"
    r"verify|make sure|ensure|greet|address|treat|offer|tell|inform|explain|transfer|"
    r"escalate|refer|apologi[sz]e|respond|reply|answer|speak|write|stay|remain|follow|"
    r"protect|mask|hide|include|mention|remind|limit|collect|record|log|send|give|issue|"
    r"refund|escalate|route|hand)\b",
    re.IGNORECASE,
)
_HUMAN = re.compile(
    r"\b(?:human|humans|manager|managers|supervisor|supervisors|specialist|specialists|"
    r"approval|approve|escalat\w*|transfer\w*|hand (?:it |them |the \w+ )?(?:over|off))\b",
    re.IGNORECASE,
)
_TEAM = re.compile(r"\bthe ([a-z][a-z ]{1,40}?) (?:team|department|desk|queue)\b", re.IGNORECASE)
_URGENT = re.compile(r"\b(?:urgent|urgently|immediately|emergency|at once)\b", re.IGNORECASE)
_NUMBER = r"(\d[\d,]*(?:\.\d+)?)"
_AMOUNT = re.compile(
    rf"(?:[$€£]\s?{_NUMBER}|{_NUMBER}\s?(?:\$|€|£|dollars?|usd|eur|euros?|gbp|pounds?)\b"
    rf"|(?:usd|eur|gbp)\s?{_NUMBER})",
    re.IGNORECASE,
)
_ABOVE = re.compile(
    r"(?:over|above|more than|greater than|exceed\w*|in excess of|beyond|larger than|"
    r"higher than|>)\s*$",
    re.IGNORECASE,
)
_UP_TO = re.compile(
    r"(?:up to|at most|no more than|maximum(?: of)?|max\.?|not exceed|under|below|less than|"
    r"within|<)\s*$",
    re.IGNORECASE,
)
_AT_LEAST = re.compile(r"(?:at least|minimum(?: of)?|min\.?|no less than)\s*$", re.IGNORECASE)
_AMOUNT_ARGUMENT = re.compile(
    r"(?:^|_)(?:amount|total|price|sum|value|refund|credit|fee|cost|compensation)(?:_|$)"
)
_LEAD = re.compile(
    r"^(?:(?:if|when|whenever|before|after|once|for|unless|generally|in general|"
    r"in particular|otherwise|also|however|note)\b[^,]*,\s*)+",
    re.IGNORECASE,
)
_MODAL = re.compile(
    r"\b(?:must|should|shall|can|cannot|can't|may|will|never|always|only|need|needs|has to|"
    r"have to|is|are|do not|don't|does not|require|requires)\b",
    re.IGNORECASE,
)
_AGENT = re.compile(r"^(?:you|we|i|agents?|the agent|our agents?|staff|the assistant)$", re.I)
_OBJECT_STOP = re.compile(
    r"\b(?:by|to|for|with|without|from|about|in|on|at|after|before|when|if|unless|per|"
    r"that|which|because|than|until|while|so)\b|[,;:(]",
    re.IGNORECASE,
)
_CONDITION = re.compile(
    r"\b(?:if and only if|only if|if|when|whenever|in case|unless)\b\s+(.+?)(?:,|\.|;|$)",
    re.IGNORECASE,
)
_GENERIC_NOUNS = frozenset(terms("tool tools action actions request requests thing things"))
_ID_STOPWORDS = frozenset(
    re.split(
        r"\s+",
        """a an the and or of to in on at by for with from is are be been you we i your our their
    they it its this that these those should must shall can could may might will would do
    does not never only always any all each every some very just also please user users
    customer customers agent agents has have had if when then than unless so but as e g
    generally one there""",
    )
)


@dataclass(frozen=True, slots=True)
class RuleDraft:
    policies: tuple[Policy, ...]
    escalation_rules: tuple[EscalationRule, ...]


def is_rule_sentence(text: str, *, constraint: bool = False) -> bool:
    """Whether `text` states a standing rule (see the module docstring)."""
    stripped = text.strip()
    if len(stripped.split()) < 2 or stripped.endswith("?"):
        return constraint and bool(stripped) and not stripped.endswith("?")
    return constraint or bool(
        _NORMATIVE.search(stripped)
        or _IMPERATIVE.match(stripped)
        or re.match(r"^no\s+\w+", stripped, re.IGNORECASE)
        or (_HUMAN.search(stripped) and amount_bound(stripped) is not None)
    )


def unique_id(base: str, taken: Collection[str]) -> str:
    """`base`, or `base_2`, `base_3`... when taken; kept within 64 characters."""
    candidate = base[:64]
    number = 2
    while candidate in taken:
        suffix = f"_{number}"
        candidate = base[: 64 - len(suffix)] + suffix
        number += 1
    return candidate


def rule_id(text: str, *, prefix: str = "") -> str:
    """A snake_case id from the first content words of `text` ("never_" for a prohibition)."""
    words = [
        word
        for word in re.findall(r"[a-z0-9]+", _main_clause(text, amounts=True).lower())
        if (len(word) < 7 if word.isdigit() else word not in _ID_STOPWORDS)
    ]
    main = re.split(
        r"\b(?:if|when|unless|because|so that)\b", _main_clause(text), maxsplit=1, flags=re.I
    )[0]
    prohibition = _NEGATIVE.search(main)
    lead = "never" if prohibition and prohibition.group().lower() not in ("deny", "refuse") else ""
    chosen = [w for w in words if w not in {"never", "no", "not"}][:4]
    parts = [part for part in (prefix, lead, *chosen) if part]
    slug = "_".join(parts)[:48].strip("_") or "rule"
    return slug if slug[0].isalpha() else f"rule_{slug}"


def _main_clause(text: str, *, amounts: bool = False) -> str:
    """`text` without parentheses and leading clauses (nor amounts with their comparators,
    unless `amounts`)."""
    text = re.sub(r"\([^)]*\)", "", text)
    if not amounts:
        for pattern in (_ABOVE, _UP_TO, _AT_LEAST):
            bounded = pattern.pattern.replace(r"\s*$", r"\s*") + "(?:" + _AMOUNT.pattern + ")"
            text = re.sub(bounded, " ", text, flags=re.IGNORECASE)
    return _LEAD.sub("", re.sub(r"\s+", " ", text).strip())


def subject_terms(text: str) -> list[str]:
    """The terms of what `text` is about: its subject, or for a sentence addressed to the agent
    (or an imperative) its action when that is one a procedure could perform ("issue refunds");
    [] when it is about the agent's conduct in general."""
    clause = _main_clause(text)
    modal = _MODAL.search(clause)
    subject = clause[: modal.start()].strip(" ,") if modal else ""
    if subject and not _AGENT.match(subject):
        return [t for t in terms(subject) if not t.isdigit()]
    rest = clause[modal.end() :] if modal is not None else clause
    rest = re.sub(
        r"^(?:\s*(?:not|never|only|always|also|to|be|able|make sure|ensure|must|should|can)\b)+",
        "",
        rest,
        flags=re.IGNORECASE,
    )
    stop = _OBJECT_STOP.search(rest)
    found = [t for t in terms(rest[: stop.start()] if stop else rest) if not t.isdigit()]
    return found if found and found[0] in ACTION_VERBS else []


def _procedure_terms(
    procedure_ids: Sequence[str], procedure_tools: Mapping[str, Sequence[str]]
) -> dict[str, set[str]]:
    return {
        pid: set(terms(pid)) | {t for tool in procedure_tools.get(pid, ()) for t in terms(tool)}
        for pid in procedure_ids
    }


def applies_to(
    text: str,
    procedure_ids: Sequence[str],
    procedure_tools: Mapping[str, Sequence[str]] | None = None,
) -> tuple[str, ...]:
    """The procedures the sentence's subject is about (empty: every procedure)."""
    subject = set(subject_terms(text))
    if not subject or not procedure_ids:
        return ()
    verbs = subject & ACTION_VERBS
    nouns = subject - ACTION_VERBS - _GENERIC_NOUNS
    chosen: list[str] = []
    for pid, own in _procedure_terms(procedure_ids, procedure_tools or {}).items():
        verb_ok = bool(verbs & own) if verbs else len(nouns & own) >= min(2, len(nouns))
        noun_ok = not nouns or bool(nouns & own)
        if verb_ok and noun_ok:
            chosen.append(pid)
    return tuple(chosen) if len(chosen) < len(procedure_ids) else ()


@dataclass(frozen=True, slots=True)
class AmountBound:
    value: float
    bound: str  # "max" or "min"
    start: int
    end: int


def amount_bound(text: str) -> AmountBound | None:
    """The first money amount in `text` with the bound it sets, if any."""
    for match in _AMOUNT.finditer(text):
        raw = next(group for group in match.groups() if group)
        value = float(raw.replace(",", ""))
        before = text[: match.start()]
        if _AT_LEAST.search(before):
            return AmountBound(value, "min", match.start(), match.end())
        if _UP_TO.search(before):
            negative = bool(_NEGATIVE.search(text))
            below = re.search(r"(?:under|below|less than|<)\s*$", before, re.IGNORECASE)
            bound = "min" if negative and below else "max"
            return AmountBound(value, bound, match.start(), match.end())
        if _ABOVE.search(before):
            return AmountBound(value, "max", match.start(), match.end())
    return None


def unenforced_amount(text: str, draft: RuleDraft) -> str | None:
    """Why the amount in `text` binds no tool argument, when it does not: the rule is then
    only a sentence the model reads, which a reviewer must know."""
    bound = amount_bound(text)
    if bound is None or any(policy.limits for policy in draft.policies):
        return None
    return (
        f"no tool takes an amount the {bound.value:g} in {text.strip()!r} could bound: the "
        "runtime cannot enforce it, the model is only told the rule (add a tool with an amount "
        "argument, or a limit on one)"
    )


def _amount_limit(
    text: str, bound: AmountBound, tools: Sequence[ToolDescription]
) -> PolicyLimit | None:
    candidates = [
        (tool, name)
        for tool in tools
        for name in tool.parameter_names
        if _AMOUNT_ARGUMENT.search(name.lower())
    ]
    if not candidates:
        return None
    owners = {tool.name: tool for tool, _ in candidates}
    matcher = ToolMatcher(tuple(owners.values()))
    named = matcher.named(text)
    ranked = [named] if named else [m.tool for m in matcher.rank(text) if m.score >= 0.2]
    if not ranked:
        return None
    tool = ranked[0]
    argument = next(name for owner, name in candidates if owner.name == tool.name)
    shown = f"{bound.value:g}"
    message = f"{'At most' if bound.bound == 'max' else 'At least'} {shown}: {text}"[:500]
    if bound.bound == "max":
        return PolicyLimit(tool=tool.name, argument=argument, max=bound.value, message=message)
    return PolicyLimit(tool=tool.name, argument=argument, min=bound.value, message=message)


def escalation_condition(text: str, bound: AmountBound | None) -> str:
    """When to escalate, in words: the amount clause, else the if/when clause, else the text."""
    if bound is not None:
        clause = _LEAD.sub("", text[: bound.end])
        modal = _MODAL.search(clause)
        cut = modal is not None and 0 < modal.start() < bound.start
        head = clause[: modal.start()] if modal is not None and cut else clause
        head = re.sub(r"^(?:never|do not|don't|always)\s+", "", head.strip(), flags=re.I)
        if head:
            return head[:1].upper() + head[1:].rstrip(" ,.") + "."
    found = _CONDITION.search(text)
    if found and len(found.group(1).split()) >= 2:
        clause = found.group(1).strip()
        return clause[:1].upper() + clause[1:].rstrip(" ,.") + "."
    return text.strip()


def rule_from_sentence(
    text: str,
    anchor: Anchor,
    *,
    tools: Sequence[ToolDescription],
    procedure_ids: Sequence[str],
    procedure_tools: Mapping[str, Sequence[str]] | None = None,
    scope: Sequence[str] | None = None,
    taken: Collection[str] = (),
) -> RuleDraft | None:
    """The policy (and escalation rule) `text` states, or None when it states no rule.
    `procedure_tools` maps procedure ids to the tools they call (sharpens `applies_to`);
    `scope` fixes `applies_to`; `taken` holds ids already used (policies and escalation
    rules)."""
    sentence = re.sub(r"\s+", " ", text).strip()
    constraint = anchor.kind in ("constraint", "goal")
    if not is_rule_sentence(sentence, constraint=constraint):
        return None
    provenance = anchor.provenance()
    used = set(taken)
    policy_id = unique_id(rule_id(sentence), used)
    used.add(policy_id)
    bound = amount_bound(sentence)
    limit = _amount_limit(sentence, bound, tools) if bound is not None else None
    targets = (
        tuple(scope) if scope is not None else applies_to(sentence, procedure_ids, procedure_tools)
    )
    policy = Policy(
        id=policy_id,
        text=sentence[:4000],
        applies_to=targets,
        limits=(limit,) if limit is not None else (),
        provenance=provenance,
    )
    rules: tuple[EscalationRule, ...] = ()
    if _HUMAN.search(sentence):
        team = _TEAM.search(sentence)
        priority: Priority = "urgent" if _URGENT.search(sentence) else "normal"
        rules = (
            EscalationRule(
                id=unique_id(rule_id(sentence, prefix="escalate"), used),
                when=escalation_condition(sentence, bound)[:2000],
                queue=team.group(1).strip().lower()[:100] if team else None,
                priority=priority,
                provenance=provenance,
            ),
        )
    return RuleDraft(policies=(policy,), escalation_rules=rules)
