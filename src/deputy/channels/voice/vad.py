"""Voice activity detection on the caller's 20 ms frames: when an utterance starts (to stop
the agent talking over the caller: barge-in) and when it ends (to transcribe it).

Energy against an adaptive noise floor, with hysteresis in time:

- the noise floor is the quietest frame of the last `floor_window_ms` (minimum statistics:
  even continuous speech has quiet gaps between words, so the minimum is the line, not the
  voice); a steady hiss or a call-centre hum becomes the floor instead of "speech", and the
  floor follows the line when it gets quieter or noisier;
- a frame is voiced when it is `threshold_db` above the floor and above `min_level_db`
  (absolute: a quiet line never turns its own noise into speech);
- an utterance starts after `onset_ms` of voiced frames in a row (a click or a pop is not
  speech) and keeps `preroll_ms` before its onset (the first consonant is quiet);
- it ends after `hangover_ms` without voiced frames (natural pauses inside a sentence are
  shorter), or at `max_utterance_ms`; one with less than `min_speech_ms` of voiced audio is
  dropped (a cough, a door);
- after `early_ms` of silence it reports a `pause` with the audio so far, so a recogniser can
  start before the hangover is over; the `utterance` then says whether it is that same audio
  (the caller did not go on), so the early transcript can be used as is."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from deputy.channels.voice.audio import FRAME_MS, Pcm, level_dbfs

VadEventKind = Literal["speech_started", "pause", "utterance"]


@dataclass(frozen=True)
class VadSettings:
    threshold_db: float = 12.0
    min_level_db: float = -50.0
    floor_window_ms: int = 3000
    onset_ms: int = 100
    preroll_ms: int = 200
    hangover_ms: int = 640
    early_ms: int = 300
    """Silence before a `pause` is reported (0: never)."""
    min_speech_ms: int = 160
    max_utterance_ms: int = 30_000

    def __post_init__(self) -> None:
        names = ("onset_ms", "preroll_ms", "hangover_ms", "min_speech_ms", "floor_window_ms")
        for name in (*names, "early_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} cannot be negative")
        if self.max_utterance_ms < FRAME_MS or self.hangover_ms < FRAME_MS:
            raise ValueError("hangover_ms and max_utterance_ms must cover at least one frame")


@dataclass(frozen=True)
class VadEvent:
    """`speech_started`: an utterance began (no audio). `pause`: it has been quiet for
    `early_ms`; `audio` is the utterance so far. `utterance`: one ended; `audio` is its 16-bit
    PCM at the phone rate (with the pre-roll, without the trailing silence), `same_as_pause`
    when nothing was said after the last `pause`."""

    kind: VadEventKind
    audio: Pcm | None = None
    speech_ms: int = 0
    same_as_pause: bool = False


def _frames(ms: int) -> int:
    return max(1, -(-ms // FRAME_MS))


class VoiceActivityDetector:
    """Feed it every inbound frame in order; it answers with the events that frame caused."""

    def __init__(self, settings: VadSettings | None = None) -> None:
        self.settings = settings or VadSettings()
        self._levels: deque[float] = deque(maxlen=_frames(self.settings.floor_window_ms))
        self._preroll: deque[Pcm] = deque(maxlen=_frames(self.settings.preroll_ms) or 1)
        self._onset: list[Pcm] = []
        self._utterance: list[Pcm] = []
        self._voiced_frames = 0
        self._silent_run = 0
        self._paused = False
        self.in_speech = False

    def reset(self) -> None:
        """Forget any utterance in progress (the floor stays: it describes the line)."""
        self._preroll.clear()
        self._onset = []
        self._utterance = []
        self._voiced_frames = 0
        self._silent_run = 0
        self._paused = False
        self.in_speech = False

    @property
    def floor_db(self) -> float:
        """The current noise floor (the first frame's level before there is any other)."""
        return min(self._levels) if self._levels else -120.0

    def _voiced(self, level: float) -> bool:
        self._levels.append(level)
        s = self.settings
        return level >= s.min_level_db and level >= self.floor_db + s.threshold_db

    def feed(self, frame: Pcm) -> list[VadEvent]:
        voiced = self._voiced(level_dbfs(frame))
        if not self.in_speech:
            return self._idle(frame, voiced)
        return self._speaking(frame, voiced)

    def _idle(self, frame: Pcm, voiced: bool) -> list[VadEvent]:
        if not voiced:
            self._preroll.extend(self._onset)
            self._onset = []
            self._preroll.append(frame)
            return []
        self._onset.append(frame)
        if len(self._onset) < _frames(self.settings.onset_ms):
            return []
        self.in_speech = True
        self._utterance = [*self._preroll, *self._onset]
        self._voiced_frames = len(self._onset)
        self._preroll.clear()
        self._onset = []
        self._silent_run = 0
        return [VadEvent("speech_started")]

    def _speaking(self, frame: Pcm, voiced: bool) -> list[VadEvent]:
        s = self.settings
        self._utterance.append(frame)
        if voiced:
            self._voiced_frames += 1
            self._silent_run = 0
            self._paused = False
        else:
            self._silent_run += 1
        speech_ms = self._voiced_frames * FRAME_MS
        ended = self._silent_run >= _frames(s.hangover_ms)
        if not ended and len(self._utterance) < _frames(s.max_utterance_ms):
            if (
                s.early_ms
                and self._silent_run == _frames(s.early_ms)
                and (speech_ms >= s.min_speech_ms)
            ):
                self._paused = True
                return [VadEvent("pause", audio=self._audio(), speech_ms=speech_ms)]
            return []
        audio = self._audio() if ended else self._audio(trailing=0)
        same = self._paused and ended
        self.reset()
        if speech_ms < s.min_speech_ms:
            return []
        return [VadEvent("utterance", audio=audio, speech_ms=speech_ms, same_as_pause=same)]

    def _audio(self, trailing: int | None = None) -> Pcm:
        """The utterance so far without its trailing silence."""
        keep = len(self._utterance) - (self._silent_run if trailing is None else trailing)
        if keep <= 0:
            return np.zeros(0, np.int16)
        return np.concatenate(self._utterance[:keep]).astype(np.int16)
