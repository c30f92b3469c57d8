"""Voice activity detection on synthetic lines: voiced sound with syllable rhythm against
line noise. One utterance per phrase, ended by the hangover; short pauses do not split it;
clicks, silence and steady hum are not speech; a noisy line still finds the speaker."""

from __future__ import annotations

import numpy as np
import pytest

from deputy.channels.voice.audio import FRAME_SAMPLES, Pcm, to_pcm
from deputy.channels.voice.vad import VadEvent, VadSettings, VoiceActivityDetector

RATE = 8000
rng = np.random.default_rng(7)


def noise(seconds: float, level: float = 0.001) -> np.ndarray:
    return rng.normal(0.0, level, int(seconds * RATE))


def speechlike(seconds: float, level: float = 0.2) -> np.ndarray:
    """A voiced sound (140 Hz with harmonics) whose loudness rises and falls four times a
    second, like syllables."""
    t = np.arange(int(seconds * RATE)) / RATE
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    return level * voice * syllables / 2


def run(
    signal: np.ndarray, vad: VoiceActivityDetector | None = None
) -> list[tuple[float, VadEvent]]:
    detector = vad or VoiceActivityDetector()
    pcm: Pcm = to_pcm(signal)
    events = []
    for index in range(pcm.size // FRAME_SAMPLES):
        frame = pcm[index * FRAME_SAMPLES : (index + 1) * FRAME_SAMPLES]
        events += [((index + 1) * 0.02, e) for e in detector.feed(frame)]
    return events


def kinds(events: list[tuple[float, VadEvent]]) -> list[str]:
    """Starts and ends (pauses are about early transcription: tested on their own)."""
    return [e.kind for _, e in events if e.kind != "pause"]


def test_one_phrase_is_one_utterance_ended_by_the_hangover() -> None:
    signal = np.concatenate([noise(1.0), speechlike(1.5) + noise(1.5), noise(2.0)])
    events = run(signal)
    assert [e.kind for _, e in events] == ["speech_started", "pause", "utterance"]
    started_at, paused_at, ended_at = (at for at, _ in events)
    assert 1.0 < started_at <= 1.2  # after the onset time
    assert 2.5 + 0.25 <= paused_at <= 2.5 + 0.35  # early: 300 ms of quiet
    assert 2.5 + 0.6 <= ended_at <= 2.5 + 0.7  # the hangover: 640 ms of quiet
    utterance = events[2][1]
    assert utterance.audio is not None and utterance.audio.dtype == np.int16
    seconds = utterance.audio.size / RATE
    assert 1.5 <= seconds <= 1.5 + 0.3  # the phrase plus the pre-roll, not the silence after
    assert utterance.speech_ms >= 1200
    # Nothing was said after the pause: its audio is the utterance's, and it says so.
    pause = events[1][1]
    assert utterance.same_as_pause
    assert pause.audio is not None and np.array_equal(pause.audio, utterance.audio)


def test_speech_after_a_pause_makes_the_early_audio_stale() -> None:
    signal = np.concatenate([noise(0.5), speechlike(0.8), noise(0.45), speechlike(0.8), noise(1.5)])
    events = run(signal + noise(signal.size / RATE))
    assert [e.kind for _, e in events] == ["speech_started", "pause", "pause", "utterance"]
    first_pause, last_pause, utterance = (e for _, e in events[1:])
    assert first_pause.audio is not None and utterance.audio is not None
    assert first_pause.audio.size < utterance.audio.size / 1.5  # only the first phrase
    assert utterance.same_as_pause  # the second pause did cover all of it
    assert last_pause.audio is not None and np.array_equal(last_pause.audio, utterance.audio)
    no_early = VoiceActivityDetector(VadSettings(early_ms=0))
    assert [e.kind for _, e in run(signal, no_early)] == ["speech_started", "utterance"]


def test_a_pause_shorter_than_the_hangover_does_not_split_the_utterance() -> None:
    signal = np.concatenate([noise(0.5), speechlike(0.8), noise(0.4), speechlike(0.8), noise(1.5)])
    assert kinds(run(signal + noise(signal.size / RATE))) == ["speech_started", "utterance"]


def test_a_pause_longer_than_the_hangover_does() -> None:
    signal = np.concatenate([noise(0.5), speechlike(0.8), noise(1.0), speechlike(0.8), noise(1.5)])
    assert kinds(run(signal + noise(signal.size / RATE))) == ["speech_started", "utterance"] * 2


def test_silence_clicks_and_coughs_are_not_speech() -> None:
    assert run(noise(3.0)) == []
    click = np.concatenate([noise(1.0), 0.8 * np.ones(int(0.04 * RATE)), noise(1.0)])
    assert run(click) == []
    cough = np.concatenate([noise(1.0), speechlike(0.12), noise(1.5)])
    assert kinds(run(cough)) in ([], ["speech_started"])  # never an utterance


def test_steady_hum_becomes_the_floor_and_speech_above_it_is_found() -> None:
    t = np.arange(6 * RATE) / RATE
    hum = 0.03 * np.sin(2 * np.pi * 120 * t)  # about -33 dBFS, far above the absolute minimum
    speech = np.concatenate(
        [np.zeros(3 * RATE), speechlike(1.5, level=0.5), np.zeros(int(1.5 * RATE))]
    )
    assert run(hum) == []
    assert kinds(run(hum + speech)) == ["speech_started", "utterance"]


def test_a_quiet_line_never_turns_its_own_noise_into_speech() -> None:
    # Noise that comes and goes at -60 dBFS is far above digital silence but below the
    # absolute minimum level of speech.
    signal = np.concatenate([np.zeros(RATE), noise(1.0, level=0.001), np.zeros(RATE)])
    assert run(signal) == []


def test_a_monologue_is_cut_at_the_maximum_length() -> None:
    vad = VoiceActivityDetector(VadSettings(max_utterance_ms=2000))
    events = run(np.concatenate([noise(0.5), speechlike(5.0), noise(1.0)]), vad)
    utterances = [e for _, e in events if e.kind == "utterance"]
    assert len(utterances) >= 2
    assert all(u.audio is not None and u.audio.size <= 2 * RATE for u in utterances)


def test_reset_forgets_an_utterance_in_progress() -> None:
    vad = VoiceActivityDetector()
    run(np.concatenate([noise(0.5), speechlike(0.6)]), vad)
    assert vad.in_speech
    vad.reset()
    assert not vad.in_speech
    assert kinds(run(noise(1.0), vad)) == []


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        VadSettings(hangover_ms=0)
    with pytest.raises(ValueError, match="onset_ms cannot be negative"):
        VadSettings(onset_ms=-1)
