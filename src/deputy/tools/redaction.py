"""Redaction of credentials from the request and response records a tool source client returns.

Three rules, applied together by a `Redactor`:

- the values of sensitive headers (Authorization, Proxy-Authorization, Cookie, Set-Cookie,
  X-API-Key, and any header or query parameter that carries a configured API key) are replaced;
- every occurrence of a known secret value (an API key, a client secret, an access token that was
  fetched for the call) inside any string is replaced;
- in JSON bodies, the values of fields whose names look secret (password, secret, token, api_key,
  authorization, client_secret, ...) are replaced.

Everything here is pure: no I/O, no state beyond the frozen configuration."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"

SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-access-token",
    }
)
"""Header names (lower case) whose values are never recorded."""

_SECRET_NAME_SUFFIXES = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "authorization",
    "credential",
    "credentials",
    "privatekey",
    "cookie",
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]")
_MIN_SECRET_LENGTH = 4
"""Shorter "secrets" are not substituted inside strings: replacing every `abc` would destroy the
record without protecting anything."""


def looks_secret(name: str) -> bool:
    """Whether a JSON field, header or parameter name looks like it holds a credential.

    The name is normalised (camelCase split, lower case, separators dropped) and matches when it
    ends with one of the secret words: `password`, `clientSecret`, `api_key`, `X-Auth-Token`,
    `refresh_token` match; `max_tokens`, `token_count`, `secretary`, `token_type` do not."""
    normalised = _NON_ALNUM.sub("", _CAMEL_BOUNDARY.sub("_", name).lower())
    return any(normalised.endswith(suffix) for suffix in _SECRET_NAME_SUFFIXES)


@dataclass(frozen=True)
class Redactor:
    """What to hide: known secret values and extra header/query parameter names."""

    secrets: frozenset[str] = frozenset()
    """Exact secret values; every occurrence inside any string is replaced."""
    names: frozenset[str] = frozenset()
    """Extra header or query parameter names (any case) whose values are replaced, e.g. the
    name under which a configured API key is sent."""
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        usable = sorted(
            (s for s in self.secrets if len(s) >= _MIN_SECRET_LENGTH), key=len, reverse=True
        )
        pattern = re.compile("|".join(re.escape(s) for s in usable)) if usable else None
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "names", frozenset(n.lower() for n in self.names))

    @classmethod
    def of(cls, secrets: Iterable[str] = (), names: Iterable[str] = ()) -> Redactor:
        return cls(secrets=frozenset(s for s in secrets if s), names=frozenset(names))

    def merged(self, other: Redactor) -> Redactor:
        return Redactor(secrets=self.secrets | other.secrets, names=self.names | other.names)

    # -- strings ---------------------------------------------------------------------------

    def text(self, value: str) -> str:
        """`value` with every known secret replaced."""
        if self._pattern is None:
            return value
        return self._pattern.sub(REDACTED, value)

    def _sensitive_name(self, name: str) -> bool:
        lowered = name.lower()
        return lowered in SENSITIVE_HEADERS or lowered in self.names or looks_secret(name)

    # -- headers and URLs ------------------------------------------------------------------

    def headers(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
        """Headers with sensitive values replaced. Names are kept so a reader can see that a
        credential was sent; repeated headers are joined with ', '."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        result: dict[str, str] = {}
        for name, value in items:
            shown = REDACTED if self._sensitive_name(name) else self.text(value)
            key = name.lower()
            result[key] = f"{result[key]}, {shown}" if key in result else shown
        return result

    def query(self, params: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [
            (name, REDACTED if self._sensitive_name(name) else self.text(value))
            for name, value in params
        ]

    def url(self, url: str) -> str:
        """The URL with sensitive query parameters, user info and known secrets replaced."""
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(self.query(pairs), safe="[]")
        rebuilt = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
        return self.text(rebuilt)

    # -- JSON ------------------------------------------------------------------------------

    def json(self, value: Any) -> Any:
        """A copy of a JSON value with secret-looking fields and known secrets replaced."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                str(key): REDACTED
                if isinstance(key, str) and looks_secret(key) and value[key] is not None
                else self.json(value[key])
                for key in value
            }
        if isinstance(value, list | tuple):
            return [self.json(item) for item in value]
        return value

    def values(self, value: Any) -> Any:
        """A copy of a JSON value with only the known secret values replaced (field names are not
        judged). For tool output the model reads: a source echoing a credential must not leak it,
        but a field called `next_page_token` must survive."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {str(key): self.values(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.values(item) for item in value]
        return value


NO_REDACTION = Redactor()
