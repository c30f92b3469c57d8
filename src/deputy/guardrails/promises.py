"""Promises a reply must not make.

Two kinds, found by phrase:

- action claims: the reply says something was done ("I have refunded", "your order is
  cancelled", "I've updated your address") that needs a tool call, and no succeeded call of a
  tool whose name fits (`refund`, `cancel`, ...) is in the evidence. Negated phrasings ("has not
  been cancelled") and future ones ("will be refunded once ...") are not claims of a done action.
- guarantees about outcomes: "I guarantee", "guaranteed", "100% sure", "will always / never".

A model judge (`judge_policies`) can in addition check the reply against the agent's policy
texts; it is optional (the `regulated` preset turns it on when a model is given)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deputy.domain.spec import Policy
from deputy.guardrails.grounding import Evidence
from deputy.llm.errors import ModelOutputInvalid
from deputy.llm.structured import StructuredModel, StructuredPolicy
from deputy.llm.types import Message, Model, ModelRequest


@dataclass(frozen=True, slots=True)
class ActionClaim:
    action: str
    tool_words: tuple[str, ...]
    """Any succeeded tool whose name contains one of these supports the claim."""
    pattern: re.Pattern[str]


def _claim(action: str, words: tuple[str, ...], *patterns: str) -> ActionClaim:
    return ActionClaim(action, words, re.compile("|".join(patterns), re.IGNORECASE))


_DONE = r"(?:has been|have been|was|were|is now|are now|is|are|got)"
ACTION_CLAIMS: tuple[ActionClaim, ...] = (
    _claim(
        "refund",
        ("refund", "return", "reimburse"),
        r"\bI(?:'ve| have)? (?:just |now |already )?(?:refunded|reimbursed|issued (?:a|the|your)"
        r" (?:full |partial )?refund|processed (?:a|the|your) refund)",
        rf"\b(?:your|the|a) (?:full |partial )?refund {_DONE} (?:been )?(?:issued|processed|sent"
        r"|approved|completed)",
        r"\b(?:you|you've|you have) (?:been|have been|were) refunded\b",
    ),
    _claim(
        "cancellation",
        ("cancel",),
        r"\bI(?:'ve| have)? (?:just |now |already )?cancell?ed\b",
        rf"\b(?:your|the|this) (?:order|subscription|booking|reservation|appointment|account)"
        rf"(?: #?\w+)? {_DONE} (?:been )?(?:successfully )?cancell?ed\b",
    ),
    _claim(
        "exchange",
        ("exchange", "swap", "replace"),
        r"\bI(?:'ve| have)? (?:just |now |already )?(?:exchanged|swapped|replaced)\b",
        rf"\b(?:your|the) (?:item|items|order|product)s?(?: #?\w+)? {_DONE} (?:been )?"
        r"(?:successfully )?(?:exchanged|swapped|replaced)\b",
    ),
    _claim(
        "modification",
        ("modify", "update", "change", "edit", "set"),
        r"\bI(?:'ve| have)? (?:just |now |already )?(?:updated|changed|modified|edited)"
        r" (?:your|the)\b",
        rf"\b(?:your|the) (?:address|payment method|shipping address|order|email|phone number)"
        rf" {_DONE} (?:been )?(?:successfully )?(?:updated|changed|modified)\b",
    ),
    _claim(
        "payment",
        ("pay", "charge", "credit", "transfer"),
        r"\bI(?:'ve| have)? (?:just |now |already )?(?:charged|credited|transferred|paid)\b",
        rf"\b(?:the|your) (?:payment|transfer|credit|charge) {_DONE} (?:been )?"
        r"(?:successfully )?(?:made|sent|completed|processed|applied)\b",
    ),
)

GUARANTEES = re.compile(
    r"\bI (?:can )?(?:guarantee|promise)\b|\bguaranteed\b|\b100 ?% (?:sure|certain|guaranteed)\b"
    r"|\b(?:will|would) (?:always|never) (?:be|happen|work|arrive|fail|break|charge|get)\b"
    r"|\b(?:definitely|certainly) will (?:be|arrive|work|get)\b",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(?:not|n't|never|cannot|unable|can't|couldn't|won't|yet to)\W*$")
_CONDITIONAL = re.compile(r"\b(?:if|once|when|after|before|until|whether)\b[^.!?]*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PromiseFinding:
    kind: str
    """`unsupported_<action>` or `guarantee`."""
    excerpt: str


def _claimed(text: str, match: re.Match[str]) -> bool:
    before = text[max(0, match.start() - 40) : match.start()]
    inside = match.group()
    if _NEGATION.search(before) or re.search(r"\bnot\b|n't\b", inside, re.IGNORECASE):
        return False
    return not _CONDITIONAL.search(before)


def unsupported_actions(reply: str, evidence: Evidence) -> tuple[PromiseFinding, ...]:
    """Action claims in `reply` with no succeeded, fitting tool call in `evidence`."""
    done = [r.tool.lower() for r in evidence.succeeded()]
    findings = []
    for claim in ACTION_CLAIMS:
        for match in claim.pattern.finditer(reply):
            if not _claimed(reply, match):
                continue
            if not any(word in tool for tool in done for word in claim.tool_words):
                findings.append(PromiseFinding(f"unsupported_{claim.action}", match.group()))
            break
    return tuple(findings)


def guarantees(reply: str) -> tuple[PromiseFinding, ...]:
    return tuple(
        PromiseFinding("guarantee", m.group())
        for m in GUARANTEES.finditer(reply)
        if not _NEGATION.search(reply[max(0, m.start() - 30) : m.start()])
    )


JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"enum": ["complies", "violates"]},
        "policy": {"type": "string", "maxLength": 64},
    },
    "required": ["verdict", "policy"],
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class JudgeVerdict:
    violates: bool
    policy: str | None
    model: str


async def judge_policies(model: Model, reply: str, policies: Sequence[Policy]) -> JudgeVerdict:
    """Ask `model` whether `reply` promises or does something one of `policies` forbids.
    Policies and the reply go in as quoted JSON data. Raises the model's errors."""
    listing = json.dumps({p.id: p.text for p in policies}, ensure_ascii=False)
    request = ModelRequest(
        messages=(
            Message.system(
                "You check a customer-service reply against the company's policies. A reply "
                "violates a policy when it promises, offers or confirms something the policy "
                "forbids. The policies and the reply are data given as JSON. Answer with JSON "
                'only: {"verdict": "complies" or "violates", "policy": the violated policy id '
                'or ""}.'
            ),
            Message.user(
                f"POLICIES: {listing}\nREPLY: {json.dumps(reply[:2000], ensure_ascii=False)}"
            ),
        ),
        response_schema=JUDGE_SCHEMA,
        schema_name="policy_check",
        max_tokens=48,
        temperature=0.0,
    )
    structured = StructuredModel(model, StructuredPolicy(max_attempts=2, max_tokens=48))
    response = await structured.request(request)
    parsed = response.parsed
    if not isinstance(parsed, dict) or parsed.get("verdict") not in ("complies", "violates"):
        raise ModelOutputInvalid(f"{model.name} gave no policy verdict")
    ids = {p.id for p in policies}
    policy = parsed.get("policy") if parsed.get("policy") in ids else None
    return JudgeVerdict(parsed["verdict"] == "violates", policy, response.model or model.name)
