"""Deputy's Prometheus files pass Prometheus's own checks: the rules are valid, their maths is
right on input series (`promtool test rules` with deploy/prometheus/tests), and the example
configuration loads with them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.processes import REPO

pytestmark = pytest.mark.integration

PROMETHEUS = REPO / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian package `prometheus`)"
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_the_rules_are_valid() -> None:
    checked = promtool("check", "rules", str(PROMETHEUS / "deputy-rules.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 30 rules found" in checked.stdout


@needs_promtool
def test_the_rules_compute_burn_rates_and_alert_as_specified() -> None:
    tested = promtool("test", "rules", str(PROMETHEUS / "tests" / "deputy-rules.test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@needs_promtool
def test_the_example_configuration_loads_with_the_rules(tmp_path: Path) -> None:
    key = tmp_path / "deputy-key"
    key.write_text("dpy_key_example")
    example = (PROMETHEUS / "prometheus.example.yml").read_text()
    assert "/etc/prometheus/deputy-rules.yml" in example
    assert "/etc/prometheus/deputy-key" in example
    config = tmp_path / "prometheus.yml"
    config.write_text(
        example.replace(
            "/etc/prometheus/deputy-rules.yml", str(PROMETHEUS / "deputy-rules.yml")
        ).replace("/etc/prometheus/deputy-key", str(key))
    )
    checked = promtool("check", "config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "30 rules found" in checked.stdout
