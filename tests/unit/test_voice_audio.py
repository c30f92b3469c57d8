"""Phone audio: G.711 mu-law matches the reference coder bit for bit and round-trips within
its quantisation step; resampling keeps a tone's pitch and level and does not alias."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest

from deputy.channels.voice.audio import (
    FRAME_SAMPLES,
    frames,
    level_dbfs,
    mulaw_decode,
    mulaw_encode,
    phone_audio,
    resample,
    to_float,
    to_pcm,
)

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)


def test_known_mulaw_codes() -> None:
    # G.711: silence is 0xFF, full scale is 0x80 (+) and 0x00 (-); all bits inverted.
    pcm = np.array([0, 32767, -32768, 1000, -1000], dtype=np.int16)
    assert mulaw_encode(pcm) == bytes([0xFF, 0x80, 0x00, 0xCE, 0x4E])
    decoded = mulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00, 0xCE]))
    assert decoded.tolist() == [0, 0, 32124, -32124, 988]


def test_mulaw_matches_the_reference_coder_when_audioop_exists() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            audioop = importlib.import_module("audioop")
        except ModuleNotFoundError:
            pytest.skip("audioop was removed in Python 3.13")
    assert mulaw_encode(ALL_SAMPLES) == audioop.lin2ulaw(ALL_SAMPLES.tobytes(), 2)
    every_code = bytes(range(256))
    reference = np.frombuffer(audioop.ulaw2lin(every_code, 2), dtype=np.int16)
    assert mulaw_decode(every_code).tolist() == reference.tolist()


def test_mulaw_round_trip_error_stays_within_the_step_of_its_segment() -> None:
    back = mulaw_decode(mulaw_encode(ALL_SAMPLES)).astype(np.int32)
    wide = ALL_SAMPLES.astype(np.int32)
    error = np.abs(back - wide)
    # Steps double per segment: 8 near zero, 1024 at the top; the error is at most a step.
    assert error.max() <= 1024
    assert error[np.abs(wide) < 100].max() <= 8
    loud = np.abs(wide) > 1000
    assert (error[loud] / np.abs(wide[loud])).max() < 0.04  # logarithmic: ~3% at any level


def test_every_code_decodes_and_encodes_back_to_itself() -> None:
    codes = bytes(c for c in range(256) if c != 0x7F)  # 0x7F and 0xFF both mean zero
    assert mulaw_encode(mulaw_decode(codes)) == codes


def tone(frequency: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.sin(2 * np.pi * frequency * t)


def peak_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * rate / samples.size)


@pytest.mark.parametrize(("source", "target"), [(22050, 8000), (8000, 16000), (16000, 8000)])
def test_resampling_keeps_pitch_length_and_level(source: int, target: int) -> None:
    out = resample(tone(440.0, source), source, target)
    assert out.dtype == np.float32
    assert out.size == target
    assert abs(peak_frequency(out, target) - 440.0) <= 2.0
    middle = out[200:-200]
    assert 0.9 < float(np.max(np.abs(middle))) < 1.05


def test_downsampling_filters_out_what_the_phone_cannot_carry() -> None:
    # A 6 kHz tone is above 8 kHz's Nyquist: naive decimation would fold it to 2 kHz.
    out = resample(tone(6000.0, 22050), 22050, 8000)
    assert float(np.max(np.abs(out[200:-200]))) < 0.01
    naive = tone(6000.0, 22050)[:: 22050 // 8000]
    assert float(np.max(np.abs(naive))) > 0.5  # what the filter prevents


def test_resample_refuses_nonsense_rates_and_passes_empty_audio() -> None:
    with pytest.raises(ValueError, match="positive"):
        resample(np.zeros(10), 0, 8000)
    assert resample(np.zeros(0), 22050, 8000).size == 0


def test_float_pcm_conversions_clip_instead_of_wrapping() -> None:
    assert to_pcm(np.array([0.0, 1.5, -1.5, 0.5])).tolist() == [0, 32767, -32768, 16384]
    assert to_float(np.array([-32768, 0, 16384], dtype=np.int16)).tolist() == [-1.0, 0.0, 0.5]


def test_phone_audio_frames_are_20ms_and_padded_with_silence() -> None:
    audio = phone_audio(tone(300.0, 22050, 0.1), 22050)
    assert len(audio) == 800  # 100 ms at 8 kHz, one byte a sample
    assert [len(c) for c in frames(audio)] == [FRAME_SAMPLES] * 5
    chunks = frames(audio[:400])
    assert [len(c) for c in chunks] == [FRAME_SAMPLES] * 3
    assert chunks[-1] == audio[320:400] + b"\xff" * 80


def test_level_of_silence_and_full_scale() -> None:
    assert level_dbfs(np.zeros(160, dtype=np.int16)) == -120.0
    square = np.full(160, 32767, dtype=np.int16)
    assert level_dbfs(square) == pytest.approx(0.0, abs=0.01)
    assert level_dbfs(to_pcm(0.01 * tone(400, 8000, 0.02))) == pytest.approx(-43.0, abs=0.5)
