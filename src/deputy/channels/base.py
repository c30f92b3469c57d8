"""What every channel adapter shares: the sender protocol the outbox calls, and the errors an
adapter raises. Adapters turn a protocol into `deputy.domain.channels.Inbound` and send
`Outbound` messages back; they know nothing of the database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from deputy.domain.channels import KindConfig, Outbound


class DeliveryFailed(Exception):
    """A send that did not go through. `permanent`: retrying cannot help (a refused
    recipient, a revoked token); otherwise the outbox retries with backoff."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class InboundRejected(Exception):
    """A request that is not a genuine delivery (bad or missing signature, wrong secret
    token): answered 401/403 and never processed. The message never echoes secrets."""

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class Sender(Protocol):
    """Sends one message on a channel; returns the platform's id for it (when it gives one).
    Raises `DeliveryFailed`."""

    async def send(
        self, config: KindConfig, secrets: Mapping[str, str], message: Outbound
    ) -> str | None: ...
