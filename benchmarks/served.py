"""A real `deputy serve` process for the benchmarks that measure the platform as users run it:
a temporary data directory, the retail simulation registered as a sandbox backend, a free
port; yields the URL and the owner key printed on first start, and stops the server after."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BACKENDS = json.dumps({"retail": "examples.retail.sandbox:world_factory"})
READY_TRIES = 300


@dataclass(frozen=True)
class Served:
    url: str
    key: str
    env: dict[str, str]
    """What a `deputy` CLI process needs to reach it (DEPUTY_URL, DEPUTY_API_KEY...)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPUTY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    env.update(
        DEPUTY_DATA_DIR=str(data_dir),
        DEPUTY_SANDBOX_BACKENDS=BACKENDS,
        XDG_CONFIG_HOME=str(data_dir / "config"),
        **dict(extra or {}),
    )
    return env


@contextmanager
def deputy_serve(work: Path, extra: Mapping[str, str] | None = None) -> Iterator[Served]:
    """`deputy serve` on a free port over `work/data` (its log in `work/serve.log`)."""
    env = server_env(work / "data", extra)
    port = free_port()
    with (work / "serve.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "deputy.cli.main", "serve", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            assert server.stdout is not None
            key = ""
            for line in server.stdout:
                if "dpy_key_" in line:
                    key = next(w for w in line.split() if w.startswith("dpy_key_"))
                    break
            url = f"http://127.0.0.1:{port}"
            for _ in range(READY_TRIES):
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            yield Served(url, key, {**env, "DEPUTY_URL": url, "DEPUTY_API_KEY": key})
        finally:
            server.terminate()
            server.wait(timeout=60)
