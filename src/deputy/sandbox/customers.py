"""The customers a sandbox trial talks to: a scripted one (fixed lines from a real transcript,
for deterministic regression checks) and one a model plays from the scenario's brief.

One customer object serves one conversation."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from deputy.domain.sandbox_results import TranscriptMessage
from deputy.domain.scenarios import CustomerBrief, Scenario
from deputy.llm.types import Message, Model, ModelRequest, Usage
from deputy.sandbox.customer_prompt import (
    GREETING,
    conversation,
    customer_system_prompt,
    parse_reply,
)
from deputy.sandbox.ports import Customer, CustomerTurn

MAX_TOKENS = 200
"""A customer's message is a chat line; a longer reply is a model rambling."""
RETRY_TEMPERATURE = 0.7
"""The one retry after an empty reply samples: a greedy decoder would repeat the empty reply."""
PARROT_CHARS = 20
"""An agent line at least this long found whole in the customer's reply was copied, not said."""
REPEAT_LIMIT = 3
"""A customer saying the same message this many times in a row is stuck (a degenerate small
model): the conversation ends as out of scope instead of looping until max_turns."""


class ScriptedCustomer:
    """Says `lines` in order, whatever the agent answers; then ends (`stop`)."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = tuple(lines)
        self._said = 0

    async def next(self, transcript: Sequence[TranscriptMessage]) -> CustomerTurn:
        if self._said >= len(self.lines):
            return CustomerTurn("", stop="stop")
        line = self.lines[self._said]
        self._said += 1
        return CustomerTurn(line)


class SimulatedCustomer:
    """A customer played by `model` from `brief`. The brief's `opening`, when given, is the
    first message verbatim (no model call). A reply with nothing to say (empty, or the agent's
    last line copied) is retried once, then the conversation ends as out of scope. `seed` is
    the requests' sampling seed (so a retry that samples is reproducible too) and goes with
    their metadata, so usage records and traces tell the trials apart."""

    def __init__(
        self,
        model: Model,
        brief: CustomerBrief,
        *,
        seed: int,
        temperature: float | None = 0.0,
        max_tokens: int = MAX_TOKENS,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self.brief = brief
        self.seed = seed
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.metadata = {**dict(metadata or {}), "seed": str(seed)}
        self.system_prompt = customer_system_prompt(brief)

    def request(self, transcript: Sequence[TranscriptMessage]) -> ModelRequest:
        """The request for the customer's next message."""
        return ModelRequest(
            messages=(Message.system(self.system_prompt), *conversation(transcript)),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            seed=self.seed,
            metadata=self.metadata,
        )

    async def next(self, transcript: Sequence[TranscriptMessage]) -> CustomerTurn:
        said = [line.text for line in transcript if line.role == "customer" and line.text.strip()]
        if not said and self.brief.opening:
            return CustomerTurn(self.brief.opening)
        heard = [line.text for line in transcript if line.role == "agent" and line.text.strip()]
        last_heard = heard[-1] if heard else GREETING
        request = self.request(transcript)
        usage = Usage()
        calls = 0
        for attempt in (request, replace(request, temperature=RETRY_TEMPERATURE)):
            response = await self.model.request(attempt)
            usage += response.usage
            calls += 1
            reply = parse_reply(response.text)
            if _parrots(reply.text, last_heard):
                reply = replace(reply, text="")
            if reply.text or reply.stop is not None:
                break
        else:
            return CustomerTurn("", stop="out_of_scope", usage=usage, calls=calls)
        if reply.stop is None and _stuck(said, reply.text):
            return CustomerTurn("", stop="out_of_scope", usage=usage, calls=calls)
        return CustomerTurn(reply.text, reply.stop, usage=usage, calls=calls)


def _parrots(text: str, agent_line: str) -> bool:
    """`text` is the agent's last line said back (a small model copying the other side): the
    line itself, or a longer one quoted whole ("Sure, " + the agent's question)."""
    said, heard = _normal(text), _normal(agent_line)
    return bool(said) and (said == heard or (len(heard) >= PARROT_CHARS and heard in said))


def _stuck(said: Sequence[str], text: str) -> bool:
    """`text` would be the REPEAT_LIMIT-th identical customer message in a row."""
    previous = said[-(REPEAT_LIMIT - 1) :]
    return len(previous) == REPEAT_LIMIT - 1 and all(
        _normal(line) == _normal(text) for line in previous
    )


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def customer_for(scenario: Scenario, model: Model | None, *, seed: int) -> Customer:
    """The scenario's scripted customer when it has a script, else one `model` plays."""
    if scenario.script:
        return ScriptedCustomer(scenario.script)
    if model is None:
        raise ValueError(
            f"scenario {scenario.id} needs a customer model: it has no script, so a model "
            "plays its customer from the brief"
        )
    return SimulatedCustomer(model, scenario.customer, seed=seed)
