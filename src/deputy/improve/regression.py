"""Failing production conversations as regression scenarios: the real customer's messages
replayed turn by turn (a scripted customer), checked by a natural-language assertion that says
what the agent should now do.

The scenario keeps the conversation's real context where the transcript has it: the values the
agent looked things up with (the arguments of its tool calls: an email, an order id, a zip
code) are what the customer `knows`, so a simulated follow-up stays consistent with the
replayed messages. The scenario links to its conversation (`source`, id `reg_<conversation
id>`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import JsonValue

from deputy.domain.improvement import ConversationEvaluation, FailureCluster
from deputy.domain.scenarios import CustomerBrief, Scenario, ScenarioAssertions
from deputy.domain.spec import Provenance
from deputy.improve.conversations import ProductionConversation, customer_messages

MAX_SCRIPT = 100
MAX_KNOWN = 12
VALUE_CHARS = 200


def scenario_id(conversation_id: str) -> str:
    """`reg_<conversation id>` as a valid identifier (lower case, `_` for anything else,
    at most 64 characters)."""
    tail = re.sub(r"[^a-z0-9]+", "_", conversation_id.lower()).strip("_")
    return f"reg_{tail}"[:64].rstrip("_")


def _known(conversation: ProductionConversation) -> dict[str, str]:
    """Scalar tool-call arguments, first value per name, as what the customer knows."""
    known: dict[str, str] = {}
    for line in conversation.transcript:
        if line.role != "tool" or not line.arguments:
            continue
        for name, value in line.arguments.items():
            text = _scalar(value)
            if text and name not in known and len(known) < MAX_KNOWN:
                known[name] = text[:VALUE_CHARS]
    return known


def _scalar(value: JsonValue) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        return str(value).strip() or None
    return None


def _scenario(
    conversation: ProductionConversation,
    cluster: FailureCluster,
    evaluation: ConversationEvaluation | None,
    expectation: str,
) -> Scenario | None:
    script = tuple(message[:2000] for message in customer_messages(conversation))[:MAX_SCRIPT]
    if not script:
        return None
    intent = evaluation.intent if evaluation is not None and evaluation.intent else cluster.label
    return Scenario(
        id=scenario_id(conversation.id),
        title=f"Replay of conversation {conversation.id}: {intent}"[:200],
        kind="regression",
        customer=CustomerBrief(
            persona=f"The customer of a real conversation ({conversation.id}), replayed turn "
            "by turn."[:1000],
            goal=f'You want what you asked for in this conversation: "{script[0]}"'[:2000],
            knows=_known(conversation),
            opening=script[0],
        ),
        script=script,
        assertions=ScenarioAssertions(judge=(expectation,)),
        max_turns=min(100, max(12, 2 * len(script) + 2)),
        source=Provenance(
            source=conversation.id[:200],
            kind="transcript",
            span=f"customer turns 1-{len(script)}",
            quote=script[0],
        ),
    )


def regression_scenarios(
    cluster: FailureCluster,
    conversations: Sequence[ProductionConversation],
    evaluations: Sequence[ConversationEvaluation],
    *,
    expectation: str,
    limit: int = 3,
) -> list[Scenario]:
    """One scripted scenario per failing conversation of `cluster` (in the cluster's order, up
    to `limit`; conversations without a customer message are skipped)."""
    by_id = {c.id: c for c in conversations}
    judged = {e.conversation_id: e for e in evaluations}
    scenarios: list[Scenario] = []
    taken: set[str] = set()
    for conversation_id in cluster.conversation_ids:
        conversation = by_id.get(conversation_id)
        if conversation is None or len(scenarios) >= limit:
            continue
        scenario = _scenario(conversation, cluster, judged.get(conversation_id), expectation)
        if scenario is not None and scenario.id not in taken:
            taken.add(scenario.id)
            scenarios.append(scenario)
    return scenarios
