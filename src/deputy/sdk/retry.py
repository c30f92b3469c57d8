"""When a request is sent again, and after how long.

Retried: failures to connect, broken connections and timeouts, and the answers 429, 502, 503,
504 and 409 `idempotency_in_progress`, all bounded by `max_retries` with exponential backoff
and jitter (a `Retry-After` header is honoured up to `max_delay`). A failure after the request
may have reached the server is retried only when sending it twice is safe: reads, setters,
deletes, and POSTs, which always carry an `Idempotency-Key`. Other 4xx are never retried, nor
are the error codes a call declares final (`Call.final_codes`: a model's failure, say, whose
retry would spend the tokens again).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Nothing reached the server: safe to resend anything.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The request may have been processed; resend only idempotent requests.
_MAYBE_SENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff: float = 0.5
    max_delay: float = 8.0
    jitter: bool = True

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt + 1` (attempt counts from 0)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        base = min(self.backoff * (2.0**attempt), self.max_delay)
        return base * (0.5 + random.random() / 2) if self.jitter else base

    def retry_exception(
        self, exc: httpx.TransportError, attempt: int, *, idempotent: bool, allowed: bool = True
    ) -> float | None:
        """The delay before retrying after `exc`, or None to give up."""
        if not allowed or attempt >= self.max_retries:
            return None
        if isinstance(exc, _NOT_SENT) or (idempotent and isinstance(exc, _MAYBE_SENT)):
            return self.delay(attempt)
        return None

    def retry_response(
        self, response: httpx.Response, attempt: int, *, allowed: bool = True
    ) -> float | None:
        """The delay before retrying after an error answer, or None to give up."""
        if not allowed or attempt >= self.max_retries:
            return None
        status = response.status_code
        code = response.headers.get("x-error-code")
        in_progress = status == 409 and code == "idempotency_in_progress"
        if status not in RETRY_STATUSES and not in_progress:
            return None
        return self.delay(attempt, _retry_after(response))


NO_RETRIES = RetryPolicy(max_retries=0)


def may_have_reached_server(exc: httpx.TransportError) -> bool:
    return not isinstance(exc, _NOT_SENT)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
