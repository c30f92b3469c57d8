"""Telephone audio with numpy: G.711 mu-law (what Twilio Media Streams carry: 8 kHz, mono,
one byte a sample, 20 ms frames), conversions between 16-bit PCM and float samples, and
resampling (8 kHz caller audio up to whisper's 16 kHz; a TTS voice's rate down to 8 kHz).

`audioop` would do the mu-law part but was removed in Python 3.13; these are the ITU-T G.711
formulas, vectorised."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

PHONE_RATE: Final = 8000
"""Samples per second on the phone line."""
WHISPER_RATE: Final = 16000
FRAME_MS: Final = 20
FRAME_SAMPLES: Final = PHONE_RATE * FRAME_MS // 1000
"""Samples (= mu-law bytes) in one 20 ms frame."""

Pcm = npt.NDArray[np.int16]
Floats = npt.NDArray[np.float32]

_BIAS: Final = 0x84
_BIAS14: Final = 0x21
_FILTER_TAPS: Final = 63


def mulaw_encode(pcm: Pcm) -> bytes:
    """16-bit linear PCM to mu-law bytes (one per sample), bit-exact with the reference G.711
    coder (Sun's g711.c, which `audioop` used): 14-bit magnitude plus a bias of 33, eight
    segments of sixteen steps, all bits inverted."""
    value = np.asarray(pcm, dtype=np.int32) >> 2
    negative = value < 0
    magnitude = np.where(negative, -value, value) + _BIAS14
    # The segment is how far the highest set bit sits above bit 5; past 7 is out of range.
    segment = np.maximum(np.floor(np.log2(magnitude)).astype(np.int32) - 5, 0)
    code = np.where(
        segment > 7, 0x7F, (np.minimum(segment, 7) << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    )
    encoded = np.where(negative, code ^ 0x7F, code ^ 0xFF)
    return encoded.astype(np.uint8).tobytes()


def _decode_table() -> Pcm:
    codes = np.arange(256, dtype=np.int32)
    inverted = ~codes & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(inverted & 0x80, -magnitude, magnitude).astype(np.int16)


_DECODE: Final = _decode_table()


def mulaw_decode(data: bytes) -> Pcm:
    """Mu-law bytes to 16-bit linear PCM."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def to_float(pcm: Pcm) -> Floats:
    """16-bit PCM to floats in [-1, 1)."""
    return (np.asarray(pcm, dtype=np.float32) / 32768.0).astype(np.float32)


def to_pcm(samples: npt.NDArray[np.floating]) -> Pcm:
    """Floats in [-1, 1] to 16-bit PCM (clipped, not wrapped)."""
    scaled = np.clip(np.asarray(samples, dtype=np.float64) * 32767.0, -32768, 32767)
    return np.round(scaled).astype(np.int16)


def _lowpass(samples: npt.NDArray[np.float64], cutoff: float) -> npt.NDArray[np.float64]:
    """A linear-phase FIR low-pass (windowed sinc, Blackman); `cutoff` as a fraction of the
    Nyquist frequency."""
    n = np.arange(_FILTER_TAPS) - (_FILTER_TAPS - 1) / 2
    taps = cutoff * np.sinc(cutoff * n) * np.blackman(_FILTER_TAPS)
    taps /= taps.sum()
    return np.convolve(samples, taps, mode="same")


def resample(samples: npt.NDArray[np.floating], source_rate: int, target_rate: int) -> Floats:
    """Band-limited resampling: a low-pass below the lower of the two Nyquist frequencies
    (anti-aliasing going down, anti-imaging going up), then interpolation at the new
    instants. Good enough for speech on a phone line and for a recogniser, cheap on a CPU."""
    if source_rate <= 0 or target_rate <= 0:
        raise ValueError("sample rates must be positive")
    data = np.asarray(samples, dtype=np.float64)
    if source_rate == target_rate or data.size == 0:
        return data.astype(np.float32)
    length = math.floor(data.size * target_rate / source_rate)
    if target_rate < source_rate:
        data = _lowpass(data, 0.9 * target_rate / source_rate)
    positions = np.arange(length, dtype=np.float64) * (source_rate / target_rate)
    out = np.interp(positions, np.arange(data.size, dtype=np.float64), data)
    if target_rate > source_rate:
        out = _lowpass(out, 0.9 * source_rate / target_rate)
    return out.astype(np.float32)


def phone_audio(samples: npt.NDArray[np.floating], rate: int) -> bytes:
    """Synthesised float audio at `rate` as mu-law bytes for the phone line."""
    return mulaw_encode(to_pcm(resample(samples, rate, PHONE_RATE)))


def frames(data: bytes, size: int = FRAME_SAMPLES) -> list[bytes]:
    """`data` in 20 ms frames; the last one padded with mu-law silence (0xFF)."""
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    if chunks and len(chunks[-1]) < size:
        chunks[-1] = chunks[-1] + b"\xff" * (size - len(chunks[-1]))
    return chunks


def level_dbfs(pcm: Pcm) -> float:
    """The RMS level of a frame in dB relative to full scale (-120 for digital silence)."""
    if pcm.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(np.asarray(pcm, dtype=np.float64)))))
    return max(-120.0, 20.0 * math.log10(rms / 32768.0)) if rms > 0 else -120.0
