"""Acceptance: the Deputy server is killed (SIGKILL, a real process) while a build waits on its
model, is restarted on the same database, and the build is run again from its inputs and
succeeds, its second attempt on record.

The model is a scripted OpenAI-compatible endpoint on 127.0.0.1 that holds its first answer
until the server is dead."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.scripted_openai import scripted_openai
from tests.processes import KEY, SHARED_DATA, START_TIMEOUT, base_env, deputy_server

pytestmark = [pytest.mark.integration, pytest.mark.acceptance]

LEASE_SECONDS = 2.0
POLICY = SHARED_DATA / "tau2-bench" / "data" / "tau2" / "domains" / "retail" / "policy.md"
TOOLS = SHARED_DATA / "tau2-bench" / "tools-data.json"


def test_a_build_killed_mid_run_is_run_again_after_a_restart(
    tmp_path: Path, database_url: str
) -> None:
    env = base_env(tmp_path)
    env.update(
        DEPUTY_DATA_DIR=str(tmp_path / "data"),
        DEPUTY_DATABASE_URL=database_url,
        DEPUTY_TURN_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    asked = threading.Event()
    release = threading.Event()

    def decide(messages: list[dict[str, Any]], tools: list[str]) -> str:
        del messages, tools
        asked.set()
        release.wait(60)
        return "{}"  # not what the builder's schema asks: it keeps its rules' answers

    with scripted_openai(decide) as (model_url, endpoint):
        with deputy_server("serve", env, tmp_path / "first.log") as first:
            key = first.read_until(KEY, START_TIMEOUT).group(0)
            first.wait_healthy()
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=first.url, headers=headers, timeout=60) as api:
                created = api.post(
                    "/v1/model-endpoints", json={"name": "scripted", "base_url": model_url}
                )
                assert created.status_code == 201, created.text
                materials = [
                    api.post(
                        "/v1/materials", files={"file": (path.name, path.read_bytes())}
                    ).json()["id"]
                    for path in (POLICY, TOOLS)
                ]
                started = api.post(
                    "/v1/builds",
                    json={
                        "goal": "Help our retail customers with orders, returns and exchanges.",
                        "material_ids": materials,
                        "model": "openai-compatible:scripted/m",
                    },
                )
                assert started.status_code == 202, started.text
                build_id = started.json()["id"]
                assert asked.wait(60), "the build never asked its model"
                running = api.get(f"/v1/builds/{build_id}").json()
                assert (running["status"], running["attempts"]) == ("running", 1)
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.wait(timeout=10)
        release.set()
        asked_before_restart = len(endpoint.requests)
        time.sleep(LEASE_SECONDS + 0.5)  # the dead process's lease on the build expires

        with deputy_server("serve", env, tmp_path / "second.log") as second:
            second.wait_healthy()
            with httpx.Client(base_url=second.url, headers=headers, timeout=60) as api:
                deadline = time.monotonic() + 120
                while True:
                    build = api.get(f"/v1/builds/{build_id}").json()
                    if build["status"] in ("succeeded", "failed"):
                        break
                    assert time.monotonic() < deadline, f"the build was not resumed: {build}"
                    time.sleep(0.2)
                assert build["status"] == "succeeded", build
                assert (build["attempts"], build["revision"]) == (2, 1)
                assert build["material_ids"] == materials
                report = api.get(f"/v1/builds/{build_id}/report").json()
                assert report["model"] == "openai-compatible:scripted/m"
                assert len(endpoint.requests) > asked_before_restart  # asked again, afresh
                assert api.get(f"/v1/builds/{build_id}/spec").json()["procedures"]
