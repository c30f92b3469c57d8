"""The voice channel end to end: Twilio's signed call webhook answers TwiML with a stream token;
a caller on the real media-stream WebSocket says "I want to return my order" (synthesized,
as 8 kHz mu-law 20 ms frames with silence after); the echo agent's reply comes back as audio
that whisper transcribes to the reply's words; the call is a conversation the API shows and
can continue; forged signatures and stream tokens are refused; barge-in clears playback."""

from __future__ import annotations

import shutil

import pytest
from starlette.websockets import WebSocketDisconnect

from deputy.channels.twilio import SIGNATURE_HEADER, twilio_signature
from deputy.channels.voice.stt import (
    SpeechModelMissing,
    WhisperSettings,
    bundled_model_dir,
    check_model_dir,
    shared_transcriber,
)
from deputy.channels.voice.tts import bundled_voice
from deputy.store import tables as t
from tests.integration.channel_agent import ECHO_PREFIX, echo_agent
from tests.integration.conftest import Api
from tests.integration.voice_caller import (
    AUTH_TOKEN,
    CALLER,
    WEBHOOK_URL,
    Caller,
    call_form,
    overlap,
    place_call,
    silence,
    spoken,
    voice_connection,
)

pytestmark = pytest.mark.integration

SAID = "I want to return my order."
GREETING = "Hello and thank you for calling customer support."


@pytest.fixture(autouse=True)
def speech_engines() -> None:
    try:
        check_model_dir(bundled_model_dir())
    except SpeechModelMissing as missing:
        pytest.skip(f"whisper weights not installed: {missing}")
    if bundled_voice() is None and shutil.which("espeak-ng") is None:
        pytest.skip("no text-to-speech: install deputy[voice] or espeak-ng")


def transcribe(pcm: object) -> str:
    return shared_transcriber(WhisperSettings()).transcribe(pcm)  # type: ignore[arg-type]


def phone_line(api: Api, **voice: object) -> str:
    channels = {"voice": {"enabled": True, **voice}}
    agent_id = echo_agent(api, channels=channels)
    return voice_connection(api, agent_id)


def test_a_call_is_heard_answered_aloud_and_kept_as_a_conversation(api: Api) -> None:
    connection_id = phone_line(api, greeting=GREETING)
    stream_url, token = place_call(api, connection_id, "CA-call-1")
    assert stream_url == "wss://voice.example.com/v1/media"

    with api.client.websocket_connect(f"/v1/channels/{connection_id}/media") as ws:
        caller = Caller(ws)
        caller.start("CA-call-1", token)
        greeting = caller.listen()
        assert overlap(GREETING, transcribe(greeting.pcm())) >= 0.6
        caller.say(silence(0.5) + spoken(SAID) + silence(1.5))
        answer = caller.listen()
        caller.stop("CA-call-1")
    assert answer.names[0] == "media" and answer.names[-1] == "mark"
    assert len(answer.audio) > 8000  # more than a second of speech
    heard = transcribe(answer.pcm())
    expected = ECHO_PREFIX + SAID
    assert overlap(expected, heard) >= 0.6, heard

    listed = api.client.get("/v1/conversations", headers=api.headers()).json()["data"]
    calls = [c for c in listed if c["channel"] == "voice"]
    assert len(calls) == 1
    conversation = calls[0]
    with api.platform.db.session() as session:
        row = session.get_one(t.Conversation, conversation["id"])
        assert row.meta == {"connection_id": connection_id, "call_sid": "CA-call-1"}
        customer = session.get_one(t.Customer, conversation["customer_id"])
        assert (customer.channel, customer.external_id) == ("voice", CALLER)
    entries = api.client.get(
        f"/v1/conversations/{conversation['id']}/transcript", headers=api.headers()
    ).json()["entries"]
    said = [(e["kind"], e["text"]) for e in entries if e["kind"].endswith("message")]
    assert said[0] == ("agent_message", GREETING)
    assert said[1][0] == "customer_message" and overlap(SAID, said[1][1]) >= 0.8
    assert said[2] == ("agent_message", ECHO_PREFIX + said[1][1])

    followed = api.client.post(
        f"/v1/conversations/{conversation['id']}/messages",
        json={"text": "And where is my refund?"},
        headers=api.headers(),
    )
    assert followed.status_code == 200, followed.text
    assert followed.json()["reply"]["text"] == ECHO_PREFIX + "And where is my refund?"


def test_the_call_webhook_needs_twilios_signature(api: Api) -> None:
    connection_id = phone_line(api)
    form = call_form("CA-forged")
    path = f"/v1/channels/{connection_id}/voice"
    forged = twilio_signature(WEBHOOK_URL, form, "not-the-auth-token")
    refused = api.client.post(path, data=form, headers={SIGNATURE_HEADER: forged})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert AUTH_TOKEN not in refused.text
    unsigned = api.client.post(path, data=form)
    assert unsigned.status_code == 403
    tampered = {**form, "From": "+19995550000"}
    signed = twilio_signature(WEBHOOK_URL, form, AUTH_TOKEN)
    assert (
        api.client.post(path, data=tampered, headers={SIGNATURE_HEADER: signed}).status_code == 403
    )
    unknown = api.client.post("/v1/channels/chn_unknown/voice", data=form)
    assert unknown.status_code == 404
    assert api.client.post(path, data=form, headers={SIGNATURE_HEADER: signed}).status_code == 200


@pytest.mark.parametrize("token", ["forged", None, "other-call"])
def test_a_bad_stream_token_closes_the_socket(api: Api, token: str | None) -> None:
    connection_id = phone_line(api, greeting=GREETING)  # a wrongly opened call would greet
    _url, genuine = place_call(api, connection_id, "CA-genuine")
    sent = genuine if token == "other-call" else token  # genuine, but for another call
    call_sid = "CA-someone-else" if token == "other-call" else "CA-genuine"
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        api.client.websocket_connect(f"/v1/channels/{connection_id}/media") as ws,
    ):
        Caller(ws).answer(call_sid, sent)
    assert closed.value.code == 4403
    listed = api.client.get("/v1/conversations", headers=api.headers()).json()["data"]
    assert not [c for c in listed if c["channel"] == "voice"]


def test_a_stream_token_opens_one_stream_only(api: Api) -> None:
    connection_id = phone_line(api, greeting=GREETING)
    _url, token = place_call(api, connection_id, "CA-once")
    path = f"/v1/channels/{connection_id}/media"
    with api.client.websocket_connect(path) as ws:
        Caller(ws).answer("CA-once", token)
    with pytest.raises(WebSocketDisconnect) as closed, api.client.websocket_connect(path) as ws:
        Caller(ws).answer("CA-once", token)
    assert closed.value.code == 4403


def test_the_media_stream_of_an_unknown_connection_is_refused(api: Api) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        api.client.websocket_connect("/v1/channels/chn_unknown/media") as ws,
    ):
        ws.receive_json()
    assert closed.value.code == 4404


def test_talking_over_the_agent_clears_its_playback(api: Api) -> None:
    connection_id = phone_line(api, barge_in=True)
    _url, token = place_call(api, connection_id, "CA-barge")
    with api.client.websocket_connect(f"/v1/channels/{connection_id}/media") as ws:
        caller = Caller(ws)
        caller.start("CA-barge", token)
        caller.say(silence(0.3) + spoken(SAID) + silence(1.2))
        playing = caller.listen(ack_marks=False)  # all sent, none played yet: still talking
        assert playing.names[0] == "media"
        caller.say(spoken("Wait, stop that.") + silence(1.2))
        after = caller.listen(ack_marks=False)
        caller.stop("CA-barge")
    assert after.names[0] == "clear"  # first the playback is dropped, then the new answer
    assert overlap(ECHO_PREFIX + "Wait, stop that.", transcribe(after.pcm())) >= 0.6


def test_without_barge_in_talking_over_the_agent_is_ignored(api: Api) -> None:
    connection_id = phone_line(api, barge_in=False)
    _url, token = place_call(api, connection_id, "CA-polite")
    with api.client.websocket_connect(f"/v1/channels/{connection_id}/media") as ws:
        caller = Caller(ws)
        caller.start("CA-polite", token)
        caller.say(silence(0.3) + spoken(SAID) + silence(1.2))
        sent = caller.listen(ack_marks=False)
        caller.say(spoken("Wait, stop that.") + silence(1.2))  # over the agent: not heard
        caller.ws.send_json(sent.events[-1])  # Twilio: the mark was played
        caller.say(spoken("Can you help me with my account?") + silence(1.2))  # after it: heard
        after = caller.listen()
        caller.stop("CA-polite")
    assert "clear" not in after.names
    heard = transcribe(after.pcm())
    assert overlap(ECHO_PREFIX + "Can you help me with my account?", heard) >= 0.6, heard
    assert "stop" not in heard.lower()


def test_a_colleague_who_takes_the_call_over_is_heard_by_the_caller(api: Api) -> None:
    connection_id = phone_line(api, greeting=GREETING)
    _url, token = place_call(api, connection_id, "CA-colleague")
    with api.client.websocket_connect(f"/v1/channels/{connection_id}/media") as ws:
        caller = Caller(ws)
        caller.answer("CA-colleague", token)
        listed = api.client.get("/v1/conversations", headers=api.headers()).json()["data"]
        (conversation,) = [c for c in listed if c["channel"] == "voice"]
        with api.platform.db.session() as session:  # as a handoff would leave it
            session.get_one(t.Conversation, conversation["id"]).status = "queued"
        path = f"/v1/conversations/{conversation['id']}"
        claimed = api.client.post(f"{path}/claim", headers=api.headers())
        assert claimed.status_code == 200, claimed.text
        said = "Hi, this is Sam from the returns team."
        replied = api.client.post(
            f"{path}/human-replies", json={"text": said}, headers=api.headers()
        )
        assert replied.status_code == 201, replied.text
        heard = caller.listen()
        caller.stop("CA-colleague")
    assert overlap(said, transcribe(heard.pcm())) >= 0.6


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_a_spec_may_choose_the_espeak_voice(api: Api) -> None:
    connection_id = phone_line(api, greeting=GREETING, voice="espeak-ng:en-us")
    _url, token = place_call(api, connection_id, "CA-espeak")
    with api.client.websocket_connect(f"/v1/channels/{connection_id}/media") as ws:
        caller = Caller(ws)
        greeting = caller.answer("CA-espeak", token)
        caller.stop("CA-espeak")
    expected = spoken(GREETING, voice="espeak-ng:en-us")  # espeak-ng is deterministic
    assert bytes(greeting.audio[: len(expected)]) == expected
