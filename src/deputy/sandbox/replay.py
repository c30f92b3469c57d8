"""The reference end state of a scenario, and the comparison of a trial's end state with it.

Like tau2's DB check: the scenario's reference actions are replayed in order on a fresh world
(a failing action is ignored, as tau2's evaluator does), and the world's state afterwards is
what a correct agent's work must leave, whatever path it took. States are compared as canonical
JSON (sorted keys, integral floats as integers)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import JsonValue

from deputy.domain.scenarios import ToolCallExpectation
from deputy.sandbox.ports import WorldFactory
from deputy.tools.confirmation import canonical_json

MAX_LISTED_DIFFERENCES = 5
VALUE_CHARS = 60


async def expected_state(
    world: WorldFactory, actions: Sequence[ToolCallExpectation]
) -> JsonValue | None:
    """The state of a fresh world after the reference `actions` (None when the world's state
    cannot be observed)."""
    opened = await world.open()
    try:
        for action in actions:
            await opened.call(action.tool, action.arguments)
        return await opened.state()
    finally:
        await opened.aclose()


def states_match(actual: JsonValue | None, expected: JsonValue | None) -> tuple[bool, str]:
    """Whether the trial's end state (`actual`) equals the reference one, with a short detail
    for a reviewer: the first differing paths, `path: actual != expected`."""
    if actual is None or expected is None:
        missing = "the trial's" if actual is None else "the reference"
        return False, f"{missing} end state cannot be observed, so it was not compared"
    if canonical_json(actual) == canonical_json(expected):
        return True, "the end state equals the reference end state"
    found: list[str] = []
    count = _differences(actual, expected, "", found)
    more = f" (and {count - len(found)} more)" if count > len(found) else ""
    plural = "s" if count != 1 else ""
    return False, (
        f"the end state differs from the reference at {count} path{plural}: "
        + "; ".join(found)
        + more
    )


def _differences(actual: JsonValue, expected: JsonValue, path: str, found: list[str]) -> int:
    """Count the differing leaves under `path`, listing the first few in `found`."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        count = 0
        for key in sorted(set(actual) | set(expected)):
            where = f"{path}.{key}" if path else key
            if key not in actual or key not in expected:
                count += _note(where, actual.get(key, _ABSENT), expected.get(key, _ABSENT), found)
            else:
                count += _differences(actual[key], expected[key], where, found)
        return count
    if isinstance(actual, list) and isinstance(expected, list):
        count = 0
        for index in range(max(len(actual), len(expected))):
            where = f"{path}[{index}]"
            if index < len(actual) and index < len(expected):
                count += _differences(actual[index], expected[index], where, found)
            else:
                count += _note(where, _item(actual, index), _item(expected, index), found)
        return count
    if canonical_json(actual) == canonical_json(expected):
        return 0
    return _note(path or "(root)", actual, expected, found)


def _item(values: list[JsonValue], index: int) -> object:
    return values[index] if index < len(values) else _ABSENT


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _note(path: str, actual: object, expected: object, found: list[str]) -> int:
    if len(found) < MAX_LISTED_DIFFERENCES:
        found.append(f"{path}: {_shown(actual)} != {_shown(expected)}")
    return 1


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"
