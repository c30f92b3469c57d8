"""tau2-bench task files as scenario suites.

`load_tau2_tasks` reads a tau2 domain directory's `tasks.json` (optionally one split of
`split_tasks.json`) into `Tau2Task`s, the part of tau2's task model the sandbox uses;
`tau2_suite` turns them into scenarios with tau2's reward semantics:

- the customer brief is the user scenario: persona and task instructions, the reason for the
  call as the goal, what the user knows and does not know;
- `reference_actions` are the evaluation actions with all their arguments (replayed on a fresh
  world for the DB check), `expected_tool_calls` the same actions reduced to their
  `compare_args` (tau2's ACTION check), `must_communicate` the `communicate_info`, `judge` the
  `nl_assertions`, and `reward_basis` tau2's (default DB and COMMUNICATE, as in tau2).

What the sandbox cannot honour is refused with an error naming the task: ENV_ASSERTION rewards,
an initial state (initialisation data, actions or message history), actions of the user's own
tools. Each scenario keeps the task id in its `source` (`tau2_task_id` reads it back)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from deputy.domain.errors import ValidationFailed
from deputy.domain.scenarios import (
    CustomerBrief,
    RewardComponent,
    Scenario,
    ScenarioAssertions,
    ScenarioSuite,
    ToolCallExpectation,
)
from deputy.domain.spec import Provenance

TASKS_FILE = "tasks.json"
SPLITS_FILE = "split_tasks.json"
MAX_TURNS = 30
"""Agent turns per tau2 scenario (tau2 allows 200 steps, counting tool calls and both sides)."""
SOURCE_PREFIX = "tau2:"
TITLE_CHARS = 120
DEFAULT_PERSONA = "A customer contacting support."

Tau2Reward = Literal["DB", "ENV_ASSERTION", "NL_ASSERTION", "ACTION", "COMMUNICATE"]
_REWARDS: dict[Tau2Reward, RewardComponent] = {
    "DB": "DB",
    "COMMUNICATE": "COMMUNICATE",
    "NL_ASSERTION": "NL_ASSERTION",
    "ACTION": "ACTION",
}


class Tau2TaskError(ValidationFailed):
    """A tau2 task file that cannot be imported (missing, malformed, or not supported)."""


class _Tau2(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Tau2Instructions(_Tau2):
    domain: str
    reason_for_call: str
    known_info: str | None = None
    unknown_info: str | None = None
    task_instructions: str


class Tau2UserScenario(_Tau2):
    persona: str | None = None
    instructions: Tau2Instructions | str


class Tau2Action(_Tau2):
    action_id: str
    requestor: Literal["assistant", "user"] = "assistant"
    name: str
    arguments: dict[str, JsonValue]
    compare_args: tuple[str, ...] | None = None
    """The arguments the ACTION check compares (None: all of them)."""


class Tau2Criteria(_Tau2):
    actions: tuple[Tau2Action, ...] | None = None
    env_assertions: tuple[dict[str, JsonValue], ...] | None = None
    communicate_info: tuple[str, ...] | None = None
    nl_assertions: tuple[str, ...] | None = None
    reward_basis: tuple[Tau2Reward, ...] = ("DB", "COMMUNICATE")


class Tau2Task(_Tau2):
    id: str
    user_scenario: Tau2UserScenario
    initial_state: dict[str, JsonValue] | None = None
    evaluation_criteria: Tau2Criteria | None = None


def load_tau2_tasks(domain_dir: Path, *, split: str | None = None) -> list[Tau2Task]:
    """The tasks of `domain_dir/tasks.json`, in file order; with `split`, only the ids that
    split of `split_tasks.json` lists."""
    tasks_path = domain_dir / TASKS_FILE
    raw = _read_json(tasks_path)
    if not isinstance(raw, list):
        raise Tau2TaskError(f"{tasks_path} must hold a list of tasks")
    tasks = [_task(item, index, tasks_path) for index, item in enumerate(raw)]
    ids = [task.id for task in tasks]
    repeated = sorted({task_id for task_id in ids if ids.count(task_id) > 1})
    if repeated:
        raise Tau2TaskError(f"{tasks_path} repeats task ids: {', '.join(repeated)}")
    if split is None:
        return tasks
    wanted = _split_ids(domain_dir / SPLITS_FILE, split)
    missing = sorted(wanted - set(ids))
    if missing:
        raise Tau2TaskError(
            f"split {split!r} lists tasks that {tasks_path} does not have: {', '.join(missing)}"
        )
    return [task for task in tasks if task.id in wanted]


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Tau2TaskError(f"no {path.name} in {path.parent}") from None
    except OSError as exc:
        raise Tau2TaskError(f"cannot read {path}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Tau2TaskError(f"{path} is not valid JSON: {exc}") from exc


def _task(item: Any, index: int, path: Path) -> Tau2Task:
    label = item.get("id") if isinstance(item, dict) else None
    try:
        return Tau2Task.model_validate(item)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()[:3]
        )
        where = f"task {label!r}" if label is not None else f"task #{index + 1}"
        raise Tau2TaskError(f"{where} of {path} is malformed: {problems}") from exc


def _split_ids(path: Path, split: str) -> set[str]:
    splits = _read_json(path)
    if not isinstance(splits, dict) or not all(
        isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in splits.values()
    ):
        raise Tau2TaskError(f"{path} must map split names to lists of task ids")
    if split not in splits:
        known = ", ".join(sorted(splits)) or "none"
        raise Tau2TaskError(f"unknown split {split!r} in {path} (splits: {known})")
    return set(splits[split])


def tau2_suite(tasks: Sequence[Tau2Task], *, name: str) -> ScenarioSuite:
    """One happy-path scenario per task, in order (see the module doc)."""
    scenarios: list[Scenario] = []
    taken: set[str] = set()
    for task in tasks:
        scenario_id = _scenario_id(task.id, taken)
        taken.add(scenario_id)
        try:
            scenarios.append(_scenario(task, scenario_id))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise Tau2TaskError(
                f"tau2 task {task.id!r} cannot be a scenario: {where}: {first['msg']}"
            ) from exc
    return ScenarioSuite(name=name, scenarios=tuple(scenarios))


def tau2_task_id(scenario: Scenario) -> str | None:
    """The tau2 task a scenario was imported from (None for other scenarios)."""
    source = scenario.source.source if scenario.source is not None else ""
    return source[len(SOURCE_PREFIX) :] if source.startswith(SOURCE_PREFIX) else None


def _scenario_id(task_id: str, taken: set[str]) -> str:
    """`task_<id>` as a scenario id: lower case, runs of other characters as `_`, at most 64
    characters, `_2`, `_3`... appended when two tasks would collide."""
    cleaned = re.sub(r"[^a-z0-9_]+", "_", task_id.lower()).strip("_")
    base = f"task_{cleaned}".rstrip("_")[:64]
    candidate, number = base, 2
    while candidate in taken:
        suffix = f"_{number}"
        candidate = base[: 64 - len(suffix)] + suffix
        number += 1
    return candidate


def _shorten(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def _unsupported(task: Tau2Task, what: str) -> Tau2TaskError:
    return Tau2TaskError(f"tau2 task {task.id!r}: {what} is not supported by the sandbox")


def _scenario(task: Tau2Task, scenario_id: str) -> Scenario:
    criteria = task.evaluation_criteria or Tau2Criteria()
    if task.initial_state is not None and any(v is not None for v in task.initial_state.values()):
        raise _unsupported(task, "an initial state (initialisation data, actions or history)")
    actions = criteria.actions or ()
    if any(action.requestor != "assistant" for action in actions):
        raise _unsupported(task, "an action of the user's own tools")
    if not criteria.reward_basis:
        raise _unsupported(task, "an empty reward_basis")
    basis: list[RewardComponent] = []
    for component in criteria.reward_basis:
        mapped = _REWARDS.get(component)
        if mapped is None:
            raise _unsupported(task, f"the {component} reward component")
        basis.append(mapped)
    return Scenario(
        id=scenario_id,
        title=_shorten(_goal(task), TITLE_CHARS),
        kind="happy_path",
        customer=_brief(task),
        assertions=ScenarioAssertions(
            reference_actions=tuple(
                ToolCallExpectation(tool=a.name, arguments=a.arguments) for a in actions
            ),
            reward_basis=tuple(dict.fromkeys(basis)),
            expected_tool_calls=tuple(_compared(a) for a in actions),
            must_communicate=criteria.communicate_info or (),
            judge=criteria.nl_assertions or (),
        ),
        max_turns=MAX_TURNS,
        source=Provenance(
            source=f"{SOURCE_PREFIX}{task.id}", kind="document", span=f"task {task.id}"
        ),
    )


def _goal(task: Tau2Task) -> str:
    instructions = task.user_scenario.instructions
    return instructions if isinstance(instructions, str) else instructions.reason_for_call


def _brief(task: Tau2Task) -> CustomerBrief:
    scenario = task.user_scenario
    instructions = scenario.instructions
    if isinstance(instructions, str):
        return CustomerBrief(persona=scenario.persona or DEFAULT_PERSONA, goal=instructions)
    persona = "\n\n".join(
        part.strip()
        for part in (scenario.persona, instructions.task_instructions)
        if part and part.strip()
    )
    return CustomerBrief(
        persona=persona or DEFAULT_PERSONA,
        goal=instructions.reason_for_call,
        knows={"known_info": instructions.known_info} if instructions.known_info else {},
        unknowns=(instructions.unknown_info,) if instructions.unknown_info else (),
    )


def _compared(action: Tau2Action) -> ToolCallExpectation:
    """The action as tau2's ACTION check sees it: only its `compare_args`, when given."""
    arguments = action.arguments
    if action.compare_args is not None:
        arguments = {k: v for k, v in arguments.items() if k in action.compare_args}
    return ToolCallExpectation(tool=action.name, arguments=arguments)
