"""One phone call: the caller's audio in, the agent's voice out.

Inbound frames go through voice activity detection; each finished utterance is transcribed
(in a worker thread; started at the first pause, before the hangover is over, and used when
the caller did not go on) and handed to the `CallAgent`, which answers by calling `say` with each
sentence as soon as it is known. A speaker task synthesizes the sentences in order (in a
worker thread) and sends each one at once as 20 ms mu-law frames followed by a `mark`: Twilio
buffers and plays them, so the caller hears sentence one while sentence two is synthesized.
The marks Twilio echoes back say what has been played; until then the agent is talking.

Barge-in (when enabled): if the caller starts speaking while the agent is talking, the
session sends `clear` (Twilio drops the buffered audio), forgets the sentences not spoken yet
and listens. Without barge-in, what the caller says over the agent is ignored.

The session knows nothing of the platform: the agent, the recogniser and the voice are
injected, which is also how the tests drive it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from deputy.channels.voice.audio import (
    FRAME_SAMPLES,
    PHONE_RATE,
    Pcm,
    frames,
    mulaw_decode,
    phone_audio,
)
from deputy.channels.voice.protocol import clear_message, mark_message, media_message
from deputy.channels.voice.stt import Transcriber
from deputy.channels.voice.tts import Synthesizer
from deputy.channels.voice.vad import VadSettings, VoiceActivityDetector
from deputy.runtime.turn import reply_pieces

log = logging.getLogger("deputy.channels.voice")

Say = Callable[[str], None]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MARK_GRACE_SECONDS = 2.0
"""How long past the estimated end of playback an unacknowledged mark still means "talking"
(a peer that never echoes marks must not leave the agent talking forever)."""
SORRY = "Sorry, I could not answer that just now. Could you say it again?"


class CallAgent(Protocol):
    """The conversation behind a call."""

    async def begin(self, say: Say) -> None:
        """The call is connected: greet (via `say`) and start relaying replies that do not
        answer an utterance (a human colleague's)."""
        ...

    async def hear(self, text: str, say: Say) -> None:
        """The caller said `text`: answer it through `say`, sentence by sentence."""
        ...

    async def end(self) -> None:
        """The call is over."""
        ...


@dataclass(frozen=True)
class CallOptions:
    barge_in: bool = True
    vad: VadSettings = field(default_factory=VadSettings)


@dataclass
class UtteranceTiming:
    """Where the time went between the end of an utterance and its first answering audio
    (seconds; `hangover` is the silence the detector waited for before deciding)."""

    heard: str = ""
    speech: float = 0.0
    hangover: float = 0.0
    stt: float = 0.0
    """Waiting for the transcript after the decision (less than a whole transcription when
    it started early, at the pause)."""
    early_stt: bool = False
    agent: float | None = None
    tts: float | None = None
    first_audio: float | None = None
    """From the detector's decision to the first frame sent."""
    ended_at: float = 0.0
    agent_started_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The numbers (not what was said: logs never carry the caller's words)."""
        return {
            "speech_s": round(self.speech, 3),
            "hangover_s": round(self.hangover, 3),
            "stt_s": round(self.stt, 4),
            "early_stt": self.early_stt,
            "agent_s": None if self.agent is None else round(self.agent, 4),
            "tts_s": None if self.tts is None else round(self.tts, 4),
            "first_audio_s": None if self.first_audio is None else round(self.first_audio, 4),
        }


@dataclass(frozen=True)
class _Utterance:
    audio: Pcm
    speech_ms: int
    ended_at: float
    early: asyncio.Future[str] | None
    """Its transcription, started at the pause before the hangover was over."""


def _settle(future: asyncio.Future[str]) -> None:
    if not future.cancelled():
        future.exception()  # a discarded early transcription's failure is not news


@dataclass(frozen=True)
class _Piece:
    generation: int
    text: str
    timing: UtteranceTiming | None


class CallSession:
    """Feed it the stream's `media` and `mark` messages; it sends audio back through `send`."""

    def __init__(
        self,
        *,
        stream_sid: str,
        send: Send,
        agent: CallAgent,
        transcriber: Transcriber,
        synthesizer: Synthesizer,
        options: CallOptions | None = None,
    ) -> None:
        self.stream_sid = stream_sid
        self._send = send
        self.agent = agent
        self.transcriber = transcriber
        self.synthesizer = synthesizer
        self.options = options or CallOptions()
        self.vad = VoiceActivityDetector(self.options.vad)
        self.timings: list[UtteranceTiming] = []
        self.barge_ins = 0
        self._send_lock = asyncio.Lock()
        self._inbound = b""
        self._utterances: asyncio.Queue[_Utterance] = asyncio.Queue()
        self._early: asyncio.Future[str] | None = None
        self._pieces: asyncio.Queue[_Piece] = asyncio.Queue()
        self._generation = 0
        self._synthesizing = False
        self._pending_marks: set[str] = set()
        self._mark_count = 0
        self._playback_until = 0.0
        self._current: UtteranceTiming | None = None
        self._ignoring = False
        self._tasks: list[asyncio.Task[None]] = []

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the models in the background (the first utterance should not wait for
        them), start speaking and listening, and let the agent greet."""
        self._tasks = [
            asyncio.create_task(self._warm_up(), name="voice-warm-up"),
            asyncio.create_task(self._speak_loop(), name="voice-speaker"),
            asyncio.create_task(self._listen_loop(), name="voice-listener"),
        ]
        await self.agent.begin(self.say)

    async def _warm_up(self) -> None:
        for load in (self.synthesizer.load, self.transcriber.load):
            try:
                await asyncio.to_thread(load)
            except Exception:
                log.exception("voice: a speech model could not be loaded")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.agent.end()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self._send(message)

    # ---- speaking -------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """Queue `text` to be spoken, sentence by sentence, after what is queued already."""
        for sentence in reply_pieces(text.strip()):
            if sentence.strip():
                timing = self._current if self._current and self._current.agent is None else None
                if timing is not None:
                    timing.agent = time.perf_counter() - timing.agent_started_at
                self._pieces.put_nowait(_Piece(self._generation, sentence.strip(), timing))

    @property
    def talking(self) -> bool:
        """The agent is speaking or about to: sentences queued or being synthesized, or sent
        audio not yet played."""
        if self._synthesizing or not self._pieces.empty():
            return True
        return bool(self._pending_marks) and (
            time.monotonic() < self._playback_until + MARK_GRACE_SECONDS
        )

    async def _speak_loop(self) -> None:
        while True:
            piece = await self._pieces.get()
            if piece.generation != self._generation:
                continue
            self._synthesizing = True
            try:
                started = time.perf_counter()
                speech = await asyncio.to_thread(self.synthesizer.synthesize, piece.text)
                audio = await asyncio.to_thread(phone_audio, speech.samples, speech.rate)
                synthesized = time.perf_counter() - started
            except Exception:
                log.exception("voice: the sentence could not be synthesized")
                continue
            finally:
                self._synthesizing = False
            if piece.generation != self._generation or not audio:
                continue  # the caller barged in meanwhile
            first = piece.timing is not None and piece.timing.first_audio is None
            await self._play(audio, piece.generation, piece.timing if first else None)
            if first and piece.timing is not None:
                piece.timing.tts = synthesized
                self._report(piece.timing)

    async def _play(self, audio: bytes, generation: int, timing: UtteranceTiming | None) -> None:
        for index, frame in enumerate(frames(audio)):
            if generation != self._generation:
                return
            await self.send(media_message(self.stream_sid, frame))
            if index == 0 and timing is not None:
                timing.first_audio = time.perf_counter() - timing.ended_at
        self._mark_count += 1
        name = f"s{self._mark_count}"
        self._pending_marks.add(name)
        now = time.monotonic()
        self._playback_until = max(now, self._playback_until) + len(audio) / PHONE_RATE
        await self.send(mark_message(self.stream_sid, name))

    def _report(self, timing: UtteranceTiming) -> None:
        log.info("voice: first audio", extra={"voice_timing": timing.as_dict()})

    def on_mark(self, name: str) -> None:
        self._pending_marks.discard(name)

    async def barge_in(self) -> None:
        """The caller talks over the agent: stop it."""
        self.barge_ins += 1
        self._generation += 1
        while not self._pieces.empty():
            self._pieces.get_nowait()
        self._pending_marks.clear()
        self._playback_until = 0.0
        await self.send(clear_message(self.stream_sid))

    # ---- listening ------------------------------------------------------------------------

    async def on_media(self, payload: bytes) -> None:
        self._inbound += payload
        whole = len(self._inbound) // FRAME_SAMPLES * FRAME_SAMPLES
        if not whole:
            return
        chunk, self._inbound = self._inbound[:whole], self._inbound[whole:]
        pcm = mulaw_decode(chunk)
        for start in range(0, pcm.size, FRAME_SAMPLES):
            for event in self.vad.feed(pcm[start : start + FRAME_SAMPLES]):
                if event.kind == "speech_started":
                    self._early = None
                    self._ignoring = False
                    if self.talking:
                        if self.options.barge_in:
                            await self.barge_in()
                        else:
                            self._ignoring = True
                elif event.audio is None or self._ignoring:
                    continue
                elif event.kind == "pause":
                    self._early = asyncio.ensure_future(
                        asyncio.to_thread(self.transcriber.transcribe, event.audio, PHONE_RATE)
                    )
                    self._early.add_done_callback(_settle)
                else:
                    early = self._early if event.same_as_pause else None
                    self._early = None
                    self._utterances.put_nowait(
                        _Utterance(event.audio, event.speech_ms, time.perf_counter(), early)
                    )

    async def _listen_loop(self) -> None:
        hangover = self.options.vad.hangover_ms / 1000
        while True:
            utterance = await self._utterances.get()
            timing = UtteranceTiming(
                speech=utterance.speech_ms / 1000,
                hangover=hangover,
                ended_at=utterance.ended_at,
                early_stt=utterance.early is not None,
            )
            try:
                started = time.perf_counter()
                text = await (
                    utterance.early
                    or asyncio.to_thread(self.transcriber.transcribe, utterance.audio, PHONE_RATE)
                )
                timing.stt = time.perf_counter() - started
            except Exception:
                log.exception("voice: the utterance could not be transcribed")
                self.say(SORRY)
                continue
            if not text.strip():
                continue
            timing.heard = text
            timing.agent_started_at = time.perf_counter()
            self.timings.append(timing)
            self._current = timing
            try:
                await self.agent.hear(text, self.say)
            except Exception:
                log.warning("voice: the agent could not answer", exc_info=True)
                self.say(SORRY)
            finally:
                self._current = None
