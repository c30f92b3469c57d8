"""A pretend Twilio for voice tests and the voice benchmark: a voice connection on an agent,
a signed call webhook, and a caller on the media stream WebSocket (the Starlette TestClient's)
speaking synthesized audio as 20 ms mu-law frames and collecting what the agent says."""

from __future__ import annotations

import base64
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deputy.channels.twilio import SIGNATURE_HEADER, twilio_signature
from deputy.channels.voice.audio import FRAME_SAMPLES, frames, mulaw_decode, phone_audio
from deputy.channels.voice.tts import shared_synthesizer
from tests.integration.conftest import Api

AUTH_TOKEN = "twilio-auth-token-for-tests-0123456789"
WEBHOOK_URL = "https://voice.example.com/twilio/call?line=support"
CALLER = "+14155550123"


def voice_connection(api: Api, agent_id: str, *, name: str = "phone") -> str:
    body = {
        "agent_id": agent_id,
        "kind": "voice",
        "name": name,
        "config": {
            "account_sid": "AC0123456789abcdef",
            "webhook_url": WEBHOOK_URL,
            "stream_url": "wss://voice.example.com/v1/media",
        },
        "secrets": {"auth_token": AUTH_TOKEN},
    }
    created = api.client.post("/v1/channel-connections", json=body, headers=api.headers())
    assert created.status_code == 201, created.text
    connection_id: str = created.json()["id"]
    return connection_id


def call_form(call_sid: str, caller: str = CALLER) -> dict[str, str]:
    return {
        "AccountSid": "AC0123456789abcdef",
        "CallSid": call_sid,
        "From": caller,
        "To": "+18005550100",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }


def place_call(api: Api, connection_id: str, call_sid: str) -> tuple[str, str]:
    """Twilio's signed call webhook; the TwiML's stream URL and stream token."""
    form = call_form(call_sid)
    signature = twilio_signature(WEBHOOK_URL, form, AUTH_TOKEN)
    answered = api.client.post(
        f"/v1/channels/{connection_id}/voice", data=form, headers={SIGNATURE_HEADER: signature}
    )
    assert answered.status_code == 200, answered.text
    assert answered.headers["content-type"].startswith("application/xml")
    stream = ET.fromstring(answered.text).find("./Connect/Stream")  # noqa: S314 (ours)
    assert stream is not None, answered.text
    parameter = stream.find("./Parameter[@name='token']")
    assert parameter is not None, answered.text
    return stream.attrib["url"], parameter.attrib["value"]


def spoken(text: str, voice: str | None = None) -> bytes:
    """`text` said by piper's joe voice (espeak-ng without piper) as phone mu-law."""
    speech = shared_synthesizer(voice).synthesize(text)
    return phone_audio(speech.samples, speech.rate)


def silence(seconds: float) -> bytes:
    return b"\xff" * int(seconds * 8000)


@dataclass
class Heard:
    """What the agent sent back: audio (mu-law) and the control messages, in order."""

    audio: bytearray = field(default_factory=bytearray)
    events: list[dict[str, Any]] = field(default_factory=list)
    first_media_at: float | None = None

    @property
    def names(self) -> list[str]:
        return [str(e["event"]) for e in self.events]

    def pcm(self) -> np.ndarray[Any, np.dtype[np.int16]]:
        return mulaw_decode(bytes(self.audio))


@dataclass
class Caller:
    """The Twilio side of one media stream."""

    ws: Any
    stream_sid: str = field(default_factory=lambda: f"MZ{uuid.uuid4().hex}")

    def start(self, call_sid: str, token: str | None) -> None:
        self.ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        parameters = {} if token is None else {"token": token}
        self.ws.send_json(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": self.stream_sid,
                "start": {
                    "accountSid": "AC0123456789abcdef",
                    "streamSid": self.stream_sid,
                    "callSid": call_sid,
                    "tracks": ["inbound"],
                    "customParameters": parameters,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )

    def say(self, audio: bytes, *, real_time: bool = False) -> float:
        """Stream `audio` as 20 ms frames (paced like a phone line when `real_time`); the
        time the last frame went."""
        started = time.perf_counter()
        for index, frame in enumerate(frames(audio, FRAME_SAMPLES)):
            if real_time:
                delay = started + index * 0.02 - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            self.ws.send_json(
                {
                    "event": "media",
                    "streamSid": self.stream_sid,
                    "media": {"track": "inbound", "payload": base64.b64encode(frame).decode()},
                }
            )
        return time.perf_counter()

    def listen(self, until: str = "mark", *, ack_marks: bool = True) -> Heard:
        """Messages from the agent up to the first `until` event (a mark: a sentence was
        sent whole); marks are echoed back, as Twilio does once it has played them."""
        heard = Heard()
        while True:
            message = self.ws.receive_json()
            assert message.get("streamSid") == self.stream_sid, message
            heard.events.append(message)
            if message["event"] == "media":
                if heard.first_media_at is None:
                    heard.first_media_at = time.perf_counter()
                heard.audio += base64.b64decode(message["media"]["payload"])
            elif message["event"] == "mark" and ack_marks:
                self.ws.send_json(
                    {"event": "mark", "streamSid": self.stream_sid, "mark": message["mark"]}
                )
            if message["event"] == until:
                return heard

    def answer(self, call_sid: str, token: str | None) -> Heard:
        """Start the stream and listen to the agent's first sentence (its greeting)."""
        self.start(call_sid, token)
        return self.listen()

    def stop(self, call_sid: str) -> None:
        self.ws.send_json(
            {
                "event": "stop",
                "streamSid": self.stream_sid,
                "stop": {"accountSid": "AC0123456789abcdef", "callSid": call_sid},
            }
        )


def words(text: str) -> set[str]:
    return {w.strip(".,!?:;'\"").lower() for w in text.split() if w.strip(".,!?:;'\"")}


def overlap(said: str, heard: str) -> float:
    """The share of the words said that were heard."""
    expected = words(said)
    return len(expected & words(heard)) / len(expected) if expected else 0.0
