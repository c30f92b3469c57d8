"""A real phone call through the voice channel (Twilio's signed webhook, then the media stream
on the app's WebSocket) is metered as one `voice_minutes` event when the stream ends, with its
length rounded up to the second; metering the same call again writes nothing."""

from __future__ import annotations

import shutil
from decimal import Decimal

import pytest
from starlette.websockets import WebSocketDisconnect

from deputy.billing.meter import call_minutes
from deputy.channels.voice.stt import SpeechModelMissing, bundled_model_dir, check_model_dir
from deputy.channels.voice.tts import bundled_voice
from deputy.services.channel_voice import OpenedCall, meter_call
from tests.integration.channel_agent import echo_agent
from tests.integration.conftest import Api
from tests.integration.usage_helpers import stored_events, workspace_id
from tests.integration.voice_caller import Caller, place_call, silence, voice_connection

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def speech_engines() -> None:
    try:
        check_model_dir(bundled_model_dir())
    except SpeechModelMissing as missing:
        pytest.skip(f"whisper weights not installed: {missing}")
    if bundled_voice() is None and shutil.which("espeak-ng") is None:
        pytest.skip("no text-to-speech: install deputy[voice] or espeak-ng")


def test_a_call_is_metered_once_in_minutes(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    agent_id = echo_agent(api, channels={"voice": {"enabled": True}})
    connection_id = voice_connection(api, agent_id)
    _, token = place_call(api, connection_id, "CA-metered-1")
    opened: list[OpenedCall] = []

    def keep(platform: object, call: OpenedCall, duration: float) -> bool:
        opened.append(call)
        return meter_call(api.platform, call, duration)

    monkeypatch.setattr("deputy.services.channel_voice.meter_call", keep)
    with api.client.websocket_connect(f"/v1/channels/{connection_id}/media") as ws:
        caller = Caller(ws)
        caller.start("CA-metered-1", token)
        caller.say(silence(1.0))
        caller.stop("CA-metered-1")
        with pytest.raises(WebSocketDisconnect):  # closed once the call is over (and metered)
            ws.receive_json()

    workspace = workspace_id(api)
    [event] = stored_events(api, workspace, "voice_minutes")
    [call] = opened
    seconds = event.data["seconds"]
    assert seconds >= 1 and seconds == call_minutes(seconds)[0]
    assert Decimal(event.quantity) == call_minutes(seconds)[1] > 0
    assert (event.unit, event.channel, event.agent_id) == ("minute", "voice", agent_id)
    assert event.conversation_id == call.conversation_id
    assert event.subject == "CA-metered-1" and event.data["call_sid"] == "CA-metered-1"
    assert event.data["stream_sid"] == caller.stream_sid
    assert event.occurred_at == call.started_at

    assert not meter_call(api.platform, call, 600.0)  # a repeat writes nothing
    assert [e.quantity for e in stored_events(api, workspace, "voice_minutes")] == [event.quantity]
