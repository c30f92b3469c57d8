"""A call session with a fake recogniser, voice and agent: the greeting and replies are spoken
sentence by sentence (each sent before the next is synthesized, each followed by a mark);
an utterance reaches the agent once, after its silence; barge-in clears playback and drops
what was not said yet; without barge-in, talking over the agent is ignored; failures are
apologised for instead of leaving the caller in silence."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

from deputy.channels.voice.audio import FRAME_SAMPLES, Pcm, mulaw_encode, to_pcm
from deputy.channels.voice.call import SORRY, CallOptions, CallSession, Say
from deputy.channels.voice.tts import Speech

RATE = 8000


def speechlike(seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6))
    return mulaw_encode(to_pcm(0.1 * voice * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))))


def quiet(seconds: float) -> bytes:
    return b"\xff" * int(seconds * RATE)


class FakeTranscriber:
    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.heard: list[Pcm] = []

    def load(self) -> None:
        return None

    def transcribe(self, pcm: Pcm, rate: int = RATE) -> str:
        assert rate == RATE and pcm.dtype == np.int16
        self.heard.append(pcm)
        return self.texts.pop(0) if self.texts else ""


class FakeVoice:
    """0.2 s of tone per sentence at 16 kHz; sentences listed in `hold` wait for `release`."""

    name = "fake"

    def __init__(self, log: list[str], hold: tuple[str, ...] = ()) -> None:
        self.log = log
        self.hold = hold
        self.release = threading.Event()

    def load(self) -> None:
        return None

    def synthesize(self, text: str) -> Speech:
        self.log.append(f"synth:{text}")
        if text in self.hold:
            assert self.release.wait(10)
        t = np.arange(3200) / 16000
        return Speech((0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 16000)


class FakeAgent:
    def __init__(self, greeting: str | None = None, answer: Callable[[str], str] | None = None):
        self.greeting = greeting
        self.answer = answer or (lambda text: f"You said {text}.")
        self.heard: list[str] = []
        self.ended = False

    async def begin(self, say: Say) -> None:
        if self.greeting:
            say(self.greeting)

    async def hear(self, text: str, say: Say) -> None:
        self.heard.append(text)
        say(self.answer(text))

    async def end(self) -> None:
        self.ended = True


class Line:
    """What the session sent, with the synthesizer's calls in the same log."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.sent: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        event = message["event"]
        label = message["mark"]["name"] if event == "mark" else ""
        if not self.log or self.log[-1] != f"{event}:{label}" or event != "media":
            self.log.append(f"{event}:{label}")

    def events(self) -> list[str]:
        return [m["event"] for m in self.sent]


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def feed(session: CallSession, audio: bytes) -> None:
    for start in range(0, len(audio), FRAME_SAMPLES):
        await session.on_media(audio[start : start + FRAME_SAMPLES])


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def make(
    line: Line,
    agent: FakeAgent,
    transcriber: FakeTranscriber,
    voice: FakeVoice,
    *,
    barge_in: bool = True,
) -> CallSession:
    return CallSession(
        stream_sid="MZ1",
        send=line.send,
        agent=agent,
        transcriber=transcriber,
        synthesizer=voice,
        options=CallOptions(barge_in=barge_in),
    )


def test_greeting_and_reply_are_spoken_sentence_by_sentence() -> None:
    line = Line()
    agent = FakeAgent("Hello there. How can I help?", lambda text: "One. Two! Three?")
    transcriber = FakeTranscriber(["I want to return my order"])
    session = make(line, agent, transcriber, FakeVoice(line.log))

    async def scenario() -> None:
        await session.start()
        await until(lambda: line.log.count("mark:s2") == 1, "the greeting's two sentences")
        session.on_mark("s1")
        session.on_mark("s2")  # Twilio has played the greeting
        await feed(session, quiet(0.5) + speechlike(1.2) + quiet(1.0))
        await until(lambda: "mark:s5" in line.log, "the reply's three sentences")
        await session.close()

    run(scenario)
    assert agent.heard == ["I want to return my order"] and agent.ended
    assert len(transcriber.heard) == 1
    assert 1.2 <= transcriber.heard[0].size / RATE <= 1.6  # the utterance, not the silence
    assert line.log == [
        "synth:Hello there.",
        "media:",
        "mark:s1",
        "synth:How can I help?",
        "media:",
        "mark:s2",
        "synth:One.",
        "media:",  # sent before the next sentence is synthesized
        "mark:s3",
        "synth:Two!",
        "media:",
        "mark:s4",
        "synth:Three?",
        "media:",
        "mark:s5",
    ]
    media = [m for m in line.sent if m["event"] == "media"]
    assert all(m["streamSid"] == "MZ1" for m in line.sent)
    assert len(media) == 5 * 10  # 0.2 s a sentence = 1600 bytes = ten 20 ms frames
    timing = session.timings[0]
    assert timing.heard == "I want to return my order"
    assert timing.hangover == 0.64 and timing.first_audio is not None
    assert timing.early_stt  # transcribed at the pause, before the hangover was over
    assert timing.stt >= 0 and timing.agent is not None and timing.tts is not None
    assert timing.first_audio >= timing.stt + timing.tts


def test_an_early_transcript_is_dropped_when_the_caller_goes_on() -> None:
    line = Line()
    agent = FakeAgent()

    class ByLength(FakeTranscriber):
        def transcribe(self, pcm: Pcm, rate: int = RATE) -> str:
            super().transcribe(pcm, rate)
            return "I want to return my order" if pcm.size > 1.2 * RATE else "I want to"

    transcriber = ByLength([])
    session = make(line, agent, transcriber, FakeVoice(line.log))

    async def scenario() -> None:
        await session.start()
        await feed(session, quiet(0.3) + speechlike(0.6) + quiet(0.45) + speechlike(0.8))
        await feed(session, quiet(1.0))
        await until(lambda: "mark:s1" in line.log, "the answer")
        await session.close()

    run(scenario)
    first, second = sorted(transcriber.heard, key=len)  # two pauses, two early transcriptions
    assert second.size > first.size * 2
    assert agent.heard == ["I want to return my order"]  # the stale one never reached it


def test_silence_and_noise_never_reach_the_agent() -> None:
    line = Line()
    agent = FakeAgent()
    transcriber = FakeTranscriber(["should not be asked"])
    session = make(line, agent, transcriber, FakeVoice(line.log))

    async def scenario() -> None:
        await session.start()
        await feed(session, quiet(3.0))
        await asyncio.sleep(0.1)
        await session.close()

    run(scenario)
    assert transcriber.heard == [] and agent.heard == [] and line.sent == []


def test_barge_in_clears_playback_and_drops_the_rest_of_the_reply() -> None:
    line = Line()
    agent = FakeAgent(answer=lambda text: "First. Second. Third.")
    transcriber = FakeTranscriber(["tell me everything", ""])
    voice = FakeVoice(line.log, hold=("Second.",))
    session = make(line, agent, transcriber, voice)

    async def scenario() -> None:
        await session.start()
        await feed(session, quiet(0.3) + speechlike(1.0) + quiet(1.0))
        await until(lambda: "synth:Second." in line.log, "the second sentence started")
        assert session.talking
        await feed(session, speechlike(0.3))  # the caller talks over the agent
        await until(lambda: "clear:" in line.log, "a clear")
        voice.release.set()
        await feed(session, quiet(1.0))
        await until(lambda: len(transcriber.heard) == 2, "the interruption transcribed")
        await asyncio.sleep(0.1)
        await session.close()

    run(scenario)
    assert session.barge_ins == 1
    assert line.log == ["synth:First.", "media:", "mark:s1", "synth:Second.", "clear:"]
    assert line.sent[-1] == {"event": "clear", "streamSid": "MZ1"}
    assert not session.talking


def test_talking_is_over_when_twilio_has_played_the_marks() -> None:
    line = Line()
    session = make(line, FakeAgent("Hi."), FakeTranscriber([]), FakeVoice(line.log))

    async def scenario() -> None:
        await session.start()
        await until(lambda: "mark:s1" in line.log, "the greeting")
        assert session.talking
        session.on_mark("s1")
        assert not session.talking
        await feed(session, speechlike(0.5) + quiet(1.0))  # not a barge-in: nothing to clear
        await asyncio.sleep(0.05)
        await session.close()

    run(scenario)
    assert "clear:" not in line.log and session.barge_ins == 0


def test_without_barge_in_talking_over_the_agent_is_ignored() -> None:
    line = Line()
    agent = FakeAgent("Welcome to the line.")
    transcriber = FakeTranscriber(["hello?", "my order"])
    session = make(line, agent, transcriber, FakeVoice(line.log), barge_in=False)

    async def scenario() -> None:
        await session.start()
        await until(lambda: "mark:s1" in line.log, "the greeting")
        await feed(session, speechlike(0.8) + quiet(1.0))  # over the greeting: ignored
        session.on_mark("s1")
        await feed(session, speechlike(0.8) + quiet(1.0))  # after it: heard
        await until(lambda: "mark:s2" in line.log, "the answer")
        await session.close()

    run(scenario)
    assert "clear:" not in line.log
    assert len(transcriber.heard) == 1 and agent.heard == ["hello?"]


def test_a_failing_agent_or_recogniser_gets_an_apology() -> None:
    line = Line()

    class BrokenAgent(FakeAgent):
        async def hear(self, text: str, say: Say) -> None:
            raise RuntimeError("the model is down")

    class BrokenTranscriber(FakeTranscriber):
        def transcribe(self, pcm: Pcm, rate: int = RATE) -> str:
            raise RuntimeError("no weights")

    for agent, transcriber in (
        (BrokenAgent(), FakeTranscriber(["hi"])),
        (FakeAgent(), BrokenTranscriber([])),
    ):
        line.log.clear()
        session = make(line, agent, transcriber, FakeVoice(line.log))

        async def scenario(session: CallSession = session) -> None:
            await session.start()
            await feed(session, speechlike(0.8) + quiet(1.0))
            await until(lambda: line.log[-1:] == ["mark:s2"], "the apology's two sentences")
            await session.close()

        run(scenario)
        assert line.log[0] == f"synth:{SORRY.split('. ')[0]}."
