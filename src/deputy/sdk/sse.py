"""Reading Server-Sent Events (the `text/event-stream` format) from lines of a response, for
streamed turns: `event:`, `data:` (joined across lines), `id:`. Comments are skipped, and an
event the stream ends in the middle of is dropped (as the SSE standard has it)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None = None


class _Decoder:
    """Accumulates the fields of one event; a blank line dispatches it."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> ServerSentEvent | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data and not self._event:
            return None
        event = ServerSentEvent(self._event or "message", "\n".join(self._data), self._id)
        self._event, self._data, self._id = "", [], None
        return event


def parse_sse(lines: Iterable[str]) -> Iterator[ServerSentEvent]:
    decoder = _Decoder()
    for line in lines:
        if (event := decoder.feed(line)) is not None:
            yield event


async def aparse_sse(lines: AsyncIterable[str]) -> AsyncIterator[ServerSentEvent]:
    decoder = _Decoder()
    async for line in lines:
        if (event := decoder.feed(line)) is not None:
            yield event
