"""Sending one invocation to a source: the executor's own timeout around the client's, every
client failure turned into a `ToolTransportError`, and the backoff between retries of a read."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from deputy.tools.base import Invocation, InvocationResult, ToolSourceClient, ToolTransportError

log = logging.getLogger("deputy.tools")

TIMEOUT_GRACE_SECONDS = 1.0
"""How long past its own timeout a client may take before the executor gives up on it."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter between retries of a read."""

    base_seconds: float = 0.25
    cap_seconds: float = 5.0

    def delay(self, retry: int, rng: random.Random) -> float:
        ceiling: float = min(self.cap_seconds, self.base_seconds * 2.0 ** max(retry - 1, 0))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


async def send(
    client: ToolSourceClient, invocation: Invocation, grace_seconds: float = TIMEOUT_GRACE_SECONDS
) -> InvocationResult:
    """`client.invoke`, bounded in time; any failure is a `ToolTransportError`."""
    try:
        async with asyncio.timeout(invocation.timeout_seconds + grace_seconds):
            return await client.invoke(invocation)
    except TimeoutError as exc:
        raise ToolTransportError(
            f"no answer within {invocation.timeout_seconds:g}s",
            retryable=True,
            maybe_delivered=True,
        ) from exc
    except ToolTransportError:
        raise
    except Exception as exc:  # a client defect must not leave the ledger pending
        log.exception("tool source client failed", extra={"operation": invocation.operation})
        raise ToolTransportError(
            f"the tool source failed: {type(exc).__name__}",
            retryable=False,
            maybe_delivered=True,
        ) from exc
