"""Phone calls through Twilio: the call webhook and the media stream, wired to conversations.

`answer_call` checks Twilio's signature on the call webhook and answers TwiML that connects
the call to the connection's media stream, with a short-lived token binding the stream to
this call (`deputy.channels.voice.twiml`). `serve_media_stream` runs one stream: it waits
for Twilio's `start`, checks the token, starts a conversation on channel `voice` with the
connection's agent (the customer is the caller's number from the signed webhook), speaks the
spec's `channels.voice.greeting`, then hands audio to a `CallSession` whose agent posts each
transcribed utterance as a customer message (with the connection's channel principal) and
speaks the reply sentence by sentence as the turn produces it. A colleague's reply from the
human queue is spoken too while the call lasts (followed through the in-process event bus:
the call and the colleague's request must reach the same process).

A call is one conversation; hanging up leaves it open (outcome detection and the queue
close it as for any other), so it can be read and continued through the API. When the stream
ends, the call's length is metered once (`voice_minutes`, from Twilio's `start` to the end of
the stream, rounded up to the second)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deputy.billing.meter import meter, voice_minutes_fact
from deputy.channels.base import InboundRejected
from deputy.channels.twilio import verify_twilio_signature
from deputy.channels.voice.call import CallOptions, CallSession, Say
from deputy.channels.voice.protocol import ProtocolError, StreamMessage, parse_message
from deputy.channels.voice.stt import WhisperSettings, shared_transcriber
from deputy.channels.voice.tts import (
    ESPEAK_PREFIX,
    Synthesizer,
    VoiceUnavailable,
    shared_synthesizer,
)
from deputy.channels.voice.twiml import (
    STREAM_TOKEN_SECONDS,
    TOKEN_PARAMETER,
    StreamGrant,
    connect_stream_twiml,
    issue_stream_token,
    read_stream_token,
)
from deputy.channels.voice.vad import VadSettings
from deputy.domain import resources as r
from deputy.domain.channels import VoiceConfig
from deputy.domain.errors import InvalidRequest, PermissionDenied, Unauthenticated, Unavailable
from deputy.domain.spec import AgentSpec
from deputy.runtime.journal import Entry, RecordedEntry
from deputy.services import conversations
from deputy.services.access import tenant
from deputy.services.channel_connections import LoadedConnection, load_connection
from deputy.services.conversation_journal import publish_entry
from deputy.services.conversation_store import (
    add_entry,
    agent_spec,
    entry_resource,
    load_conversation,
    next_seq,
)
from deputy.services.platform import Platform
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.channels.voice")

START_TIMEOUT_SECONDS = 10.0
MAX_CALLER_CHARS = 64

Receive = Callable[[], Awaitable[str | None]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def refusal(rejected: InboundRejected) -> Unauthenticated | PermissionDenied:
    """An adapter's refusal as the API's error (401 or 403)."""
    if rejected.status == 401:
        return Unauthenticated(str(rejected))
    return PermissionDenied(str(rejected))


def _auth_token(connection: LoadedConnection) -> str:
    token = connection.secret("auth_token")
    if token is None:  # required at creation; a connection without it cannot be verified
        raise PermissionDenied("this voice connection has no auth token: calls are refused")
    return token


async def answer_call(
    platform: Platform,
    connection_id: str,
    form: Sequence[tuple[str, str]],
    signature: str | None,
    *,
    now: float | None = None,
) -> str:
    """TwiML for Twilio's call webhook; `PermissionDenied` unless Twilio signed it."""
    connection = await platform.db.run(load_connection, platform, connection_id, "voice")
    config = connection.config
    assert isinstance(config, VoiceConfig)
    token = _auth_token(connection)
    try:
        verify_twilio_signature(str(config.webhook_url), form, token, signature)
    except InboundRejected as rejected:
        raise refusal(rejected) from None
    fields = dict(form)
    call_sid, caller = fields.get("CallSid", ""), fields.get("From", "")
    if not call_sid or len(call_sid) > 64:
        raise InvalidRequest("the call webhook has no CallSid")
    grant = StreamGrant(
        connection_id=connection.id,
        call_sid=call_sid,
        caller=(caller or "unknown")[:MAX_CALLER_CHARS],
        expires_at=(time.time() if now is None else now) + STREAM_TOKEN_SECONDS,
    )
    return connect_stream_twiml(
        config.stream_url, {TOKEN_PARAMETER: issue_stream_token(token, grant)}
    )


# ---- the conversation behind a call --------------------------------------------------------


class _SpeakingSink:
    """The turn's live events: each approved reply piece is spoken as soon as it exists."""

    def __init__(self, say: Say) -> None:
        self.say = say
        self.spoke = False

    async def entry(self, entry: RecordedEntry) -> None:
        return None

    async def reply_delta(self, text: str) -> None:
        self.spoke = True
        self.say(text)


def _add_greeting(
    platform: Platform, connection: LoadedConnection, conversation_id: str, greeting: str
) -> r.TranscriptEntry:
    with tenant(platform, connection.principal, "conversations:write") as session:
        seq = next_seq(session, conversation_id)
        row = load_conversation(session, connection.principal, conversation_id)
        return entry_resource(
            add_entry(session, row, Entry("agent_message", "greeting", text=greeting), seq=seq)
        )


def _spec(platform: Platform, connection: LoadedConnection, conversation_id: str) -> AgentSpec:
    with tenant(platform, connection.principal, "conversations:read") as session:
        row = load_conversation(session, connection.principal, conversation_id)
        return agent_spec(session, row.agent_id, row.agent_version)


@dataclass
class ConversationCall:
    """A `CallAgent` over a Deputy conversation."""

    platform: Platform
    connection: LoadedConnection
    conversation_id: str
    greeting: str | None
    _follower: asyncio.Task[None] | None = None

    async def begin(self, say: Say) -> None:
        if self.greeting:
            entry = await self.platform.db.run(
                _add_greeting, self.platform, self.connection, self.conversation_id, self.greeting
            )
            publish_entry(self.platform.events, self.conversation_id, entry)
            say(self.greeting)
        self._follower = asyncio.create_task(self._relay_colleagues(say))

    async def _relay_colleagues(self, say: Say) -> None:
        async with self.platform.events.subscribe(self.conversation_id) as events:
            async for event in events:
                if event.entry is not None and event.entry.kind == "human_message":
                    say(event.entry.text)

    async def hear(self, text: str, say: Say) -> None:
        sink = _SpeakingSink(say)
        body = r.MessageCreate(text=text[:8000])
        result = await conversations.post_message(
            self.platform, self.connection.principal, self.conversation_id, body, sink=sink
        )
        if not sink.spoke:  # a turn resumed from its journal streams nothing: say its reply
            for entry in result.entries:
                if entry.kind == "agent_message" and entry.text.strip():
                    say(entry.text)

    async def end(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower


def _server_voice(platform: Platform) -> Synthesizer:
    """The server's voice; `Unavailable` when no engine can speak (refused before the call
    starts a conversation)."""
    settings = platform.settings
    try:
        return shared_synthesizer(settings.voice_tts_voice, threads=settings.voice_threads)
    except VoiceUnavailable as missing:
        raise Unavailable(f"the phone line cannot speak: {missing}") from None


def _voice(platform: Platform, spec: AgentSpec, default: Synthesizer) -> Synthesizer:
    """The spec may pick an espeak-ng voice; anything else is the server's to choose (a spec
    never names a file on the server)."""
    chosen = spec.channels.voice.voice
    if chosen and (chosen == ESPEAK_PREFIX or chosen.startswith(ESPEAK_PREFIX + ":")):
        try:
            return shared_synthesizer(chosen, threads=platform.settings.voice_threads)
        except VoiceUnavailable as refused:
            log.warning("voice: the spec's voice %r is not usable: %s", chosen, refused)
    return default


@dataclass(frozen=True)
class OpenedCall:
    session: CallSession
    conversation_id: str
    grant: StreamGrant
    connection: LoadedConnection
    started_at: datetime
    started: float  # time.monotonic() when the call started


# Streams opened in this process, until their token expires: a token opens one stream only.
_opened: dict[tuple[str, str], float] = {}
_opened_lock = threading.Lock()


def _first_use(grant: StreamGrant, now: float) -> bool:
    with _opened_lock:
        for key, expires_at in list(_opened.items()):
            if expires_at < now:
                del _opened[key]
        key = (grant.connection_id, grant.call_sid)
        if key in _opened:
            return False
        _opened[key] = grant.expires_at
        return True


async def open_call(
    platform: Platform, connection_id: str, start: StreamMessage, send: Send
) -> OpenedCall:
    """Check the stream's token (genuine, for this connection and call, unexpired, not used
    before in this process) and start the call's conversation and session."""
    started_at, started = utcnow(), time.monotonic()
    connection = await platform.db.run(load_connection, platform, connection_id, "voice")
    now = time.time()
    try:
        grant = read_stream_token(
            _auth_token(connection),
            start.parameters.get(TOKEN_PARAMETER),
            connection_id=connection.id,
            call_sid=start.call_sid or "",
            now=now,
        )
    except InboundRejected as rejected:
        raise refusal(rejected) from None
    if not _first_use(grant, now):
        raise PermissionDenied("this call's media stream is already open or was opened")
    default_voice = _server_voice(platform)
    created = await platform.db.run(
        conversations.create_conversation,
        platform,
        connection.principal,
        r.ConversationCreate(
            agent_id=connection.agent_id,
            channel="voice",
            customer=r.CustomerRef(channel="voice", external_id=grant.caller),
            metadata={"connection_id": connection.id, "call_sid": grant.call_sid},
        ),
    )
    spec = await platform.db.run(_spec, platform, connection, created.id)
    settings = platform.settings
    whisper = WhisperSettings(model_dir=settings.voice_stt_model, threads=settings.voice_threads)
    session = CallSession(
        stream_sid=start.stream_sid or "",
        send=send,
        agent=ConversationCall(platform, connection, created.id, spec.channels.voice.greeting),
        transcriber=shared_transcriber(whisper),
        synthesizer=_voice(platform, spec, default_voice),
        options=CallOptions(
            barge_in=spec.channels.voice.barge_in,
            vad=VadSettings(hangover_ms=settings.voice_silence_ms),
        ),
    )
    return OpenedCall(session, created.id, grant, connection, started_at, started)


def meter_call(platform: Platform, opened: OpenedCall, duration_seconds: float) -> bool:
    """Write the call's `voice_minutes` event (once: a repeat writes nothing); True when this
    call wrote it."""
    principal = opened.connection.principal
    with tenant(platform, principal, "conversations:write") as session:
        row = load_conversation(session, principal, opened.conversation_id)
        fact = voice_minutes_fact(
            row,
            call_sid=opened.grant.call_sid,
            stream_sid=opened.session.stream_sid,
            started_at=opened.started_at,
            duration_seconds=duration_seconds,
        )
        return fact is not None and meter(session, fact)


async def _first_start(receive: Receive) -> StreamMessage | None:
    """Twilio's `start` (after `connected`); None when the peer went away first."""
    while True:
        raw = await receive()
        if raw is None:
            return None
        message = parse_message(raw)
        if message.event == "start":
            return message
        if message.event != "connected":
            raise ProtocolError(f"expected `start`, got `{message.event}`")


async def serve_media_stream(
    platform: Platform, connection_id: str, receive: Receive, send: Send
) -> OpenedCall | None:
    """Run one media stream until Twilio stops it or hangs up. Raises `PermissionDenied` (a
    bad token), `NotFound` (no such voice connection), `Unavailable` (no voice installed),
    `ProtocolError` or `TimeoutError` before the call starts; afterwards, bad messages are
    logged and skipped."""
    start = await asyncio.wait_for(_first_start(receive), START_TIMEOUT_SECONDS)
    if start is None:
        return None
    opened = await open_call(platform, connection_id, start, send)
    session = opened.session
    log.info(
        "voice: call %s started (conversation %s)", opened.grant.call_sid, opened.conversation_id
    )
    try:
        await session.start()
        while (raw := await receive()) is not None:
            try:
                message = parse_message(raw)
            except ProtocolError as bad:
                log.warning("voice: a stream message was skipped: %s", bad)
                continue
            if message.event == "media" and message.payload:
                await session.on_media(message.payload)
            elif message.event == "mark" and message.mark:
                session.on_mark(message.mark)
            elif message.event == "stop":
                break
    finally:
        await session.close()
        duration = time.monotonic() - opened.started
        log.info("voice: call %s ended", opened.grant.call_sid)
        try:
            await platform.db.run(meter_call, platform, opened, duration)
        except Exception:  # the call is over either way; say loudly what was not billed
            log.exception(
                "voice: call %s (%.1f s) could not be metered", opened.grant.call_sid, duration
            )
    return opened
