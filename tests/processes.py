"""Real processes for tests: `deputy` servers on free ports and CLI runs, with clean env."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DEPUTY_SHARED_DIR", REPO.parent / "shared")) / "data"
KEY = re.compile(r"dpy_key_[0-9A-Z]{26}_[A-Za-z0-9_\-]+")
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPUTY_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "src"), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["DEPUTY_ENVIRONMENT"] = "test"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def read_until(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if match := pattern.search(line):
                return match
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if match := pattern.search(line):
                return match
        raise AssertionError(f"{pattern.pattern!r} not printed; output so far:\n" + self.output)

    @property
    def output(self) -> str:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return "".join(self.lines)
            if line is not None:
                self.lines.append(line)

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited early:\n{self.output}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the server did not answer /healthz in {timeout} s")


@contextmanager
def deputy_server(
    command: str, env: dict[str, str], log: Path, *args: str
) -> Iterator[ServerProcess]:
    port = free_port()
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "deputy.cli.main", command, "--port", str(port), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=REPO,
        )
        running = ServerProcess(process, f"http://127.0.0.1:{port}")

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                running._queue.put(line)
            running._queue.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            yield running
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
            reader.join(timeout=5)
            if process.stdout is not None:
                process.stdout.close()


def deputy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "deputy.cli.main", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def deputy_json(env: dict[str, str], *args: str) -> Any:
    result = deputy(env, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
