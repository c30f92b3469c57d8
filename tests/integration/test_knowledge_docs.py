"""The Python examples in docs/knowledge.md run as written (real app services, SQLite in a
temporary data directory, the bundled embedder)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
DOC = Path(__file__).resolve().parents[2] / "docs" / "knowledge.md"


def test_the_python_examples_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the example's mkdtemp goes
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {"__name__": "docs_example"})  # noqa: S102
