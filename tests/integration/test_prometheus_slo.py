"""A real Prometheus (Debian's `prometheus`, on 127.0.0.1) scrapes a real `deputy serve` with a
workspace key, evaluates deploy/prometheus/deputy-rules.yml every second, and pages when the
agent's turns start failing: healthy turns first, then the agent's model (an OpenAI-compatible
endpoint) answers 500, the short-window availability burn rate goes over 14.4 and
`DeputySLOBurnRatePage` fires for that agent. The rules' 1h and 6h windows hold only a minute
of data here: rate() over them uses what there is."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.scripted_openai import scripted_openai
from tests.processes import KEY, REPO, START_TIMEOUT, base_env, deputy_server, free_port

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
RULES = REPO / "deploy" / "prometheus" / "deputy-rules.yml"
HEALTHY_TURNS = 6
FAILING_TURNS = 4
SPEC = {
    "name": "Burning helper",
    "goal": "Answer customers.",
    "mode": "reasoning",
    "guardrails": {"preset": "minimal"},
}


@contextmanager
def prometheus(tmp_path: Path, target: str, key: str) -> Iterator[str]:
    """Prometheus scraping `target` with `key` every second; yields its base URL."""
    (tmp_path / "deputy-key").write_text(key)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {RULES}
scrape_configs:
  - job_name: deputy
    authorization:
      type: Bearer
      credentials_file: {tmp_path / "deputy-key"}
    static_configs:
      - targets: ["{target}"]
"""
    )
    port = free_port()
    with (tmp_path / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not get ready in 60 s"
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def query(url: str, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def poll(check: Any, what: str, timeout: float = 120.0) -> Any:
    """Call `check` until it returns something truthy (a deadline, never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"{what} never happened in {timeout:.0f} s")


@pytest.mark.skipif(
    shutil.which("prometheus") is None and not Path(PROMETHEUS).exists(),
    reason="Prometheus is not installed (Debian package `prometheus`)",
)
def test_failing_turns_make_the_burn_rate_rules_page(tmp_path: Path, database_url: str) -> None:
    failing = False

    def decide(messages: list[dict[str, Any]], tools: list[str]) -> Any:
        if failing:
            raise RuntimeError("the model server is down")  # served as a 500
        return "Happy to help."

    env = base_env(tmp_path)
    env.update(DEPUTY_DATA_DIR=str(tmp_path / "data"), DEPUTY_DATABASE_URL=database_url)
    with (
        scripted_openai(decide) as (model_url, _endpoint),
        deputy_server("serve", env, tmp_path / "serve.log") as server,
    ):
        key = server.read_until(KEY, START_TIMEOUT).group(0)
        server.wait_healthy()
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        ) as api:

            def call(method: str, path: str, body: Any) -> Any:
                response = api.request(method, path, json=body)
                assert response.status_code in (200, 201), response.text
                return response.json()

            def one_turn(text: str) -> None:
                conversation = call("POST", "/v1/conversations", {"agent_id": agent})["id"]
                call("POST", f"/v1/conversations/{conversation}/messages", {"text": text})

            call("POST", "/v1/model-endpoints", {"name": "scripted", "base_url": model_url})
            agent = call("POST", "/v1/agents", {"name": "burning"})["id"]
            call("POST", f"/v1/agents/{agent}/versions", {"spec": SPEC})
            call("PATCH", f"/v1/agents/{agent}", {"model": "openai-compatible:scripted/m"})
            call("POST", f"/v1/agents/{agent}/deployments", {"version": 1})
            target = server.url.removeprefix("http://")
            with prometheus(tmp_path, target, key) as url:
                turns = f'sum(deputy_turns_total{{agent="{agent}",status="completed"}})'

                def scraped(count: int) -> Any:
                    return [r for r in query(url, turns) if float(r["value"][1]) >= count]

                # a first turn, scraped, then the rest: the counters grow inside the windows
                one_turn("Question 0?")
                poll(lambda: scraped(1), "a scrape of the first turn")
                for n in range(1, HEALTHY_TURNS):
                    one_turn(f"Question {n}?")
                poll(lambda: scraped(HEALTHY_TURNS), "a scrape of the healthy turns")
                healthy_burn = f'deputy:slo_burn_rate:rate5m{{agent="{agent}"}}'

                def burn_rates() -> dict[str, float]:
                    found = {
                        r["metric"]["slo"]: float(r["value"][1]) for r in query(url, healthy_burn)
                    }
                    return found if len(found) == 2 else {}

                # (the latency one depends on this machine: a cold first turn may be slow)
                assert poll(burn_rates, "burn rates of the healthy turns")["availability"] == 0

                failing = True
                for n in range(FAILING_TURNS):
                    one_turn(f"Question {n} again?")  # answered: handed to a person
                failed = f'sum(deputy_turns_total{{agent="{agent}",status="failed"}})'
                seen = poll(
                    lambda: [r for r in query(url, failed) if float(r["value"][1]) >= 4],
                    "a scrape of the failed turns",
                )
                seen_at = float(seen[0]["value"][0])  # the query's time: after the scrape
                burn = f'deputy:slo_burn_rate:rate5m{{agent="{agent}",slo="availability"}}'
                poll(
                    lambda: query(url, f"timestamp({burn}) > {seen_at + 1}"),
                    "a rule evaluation after that scrape",
                )
                (burning,) = query(url, burn)
                # 4 failed of 10 against a 0.5% budget: 80 (rate() counts increases inside the
                # window, so the first sample's turn is missed: about 89)
                errors = FAILING_TURNS / (HEALTHY_TURNS + FAILING_TURNS)
                assert float(burning["value"][1]) > 14.4
                assert float(burning["value"][1]) == pytest.approx(errors / 0.005, rel=0.3)
                long_burn = query(url, burn.replace("rate5m", "rate1h"))
                assert float(long_burn[0]["value"][1]) > 14.4

                def paging() -> list[dict[str, Any]]:
                    response = httpx.get(f"{url}/api/v1/alerts", timeout=10)
                    alerts: list[dict[str, Any]] = response.json()["data"]["alerts"]
                    return [
                        alert
                        for alert in alerts
                        if alert["labels"]["alertname"] == "DeputySLOBurnRatePage"
                        and alert["labels"]["agent"] == agent
                        and alert["state"] == "firing"
                    ]

                (alert,) = poll(paging, "the page alert firing")
                assert alert["labels"]["severity"] == "page"
                assert alert["labels"]["slo"] == "availability"
                assert agent in alert["annotations"]["summary"]
