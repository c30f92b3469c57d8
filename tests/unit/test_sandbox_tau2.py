"""tau2 task files as scenario suites: the retail train split and the mock domain (real files),
the mapping of each part of a task, and clear errors for what cannot be imported."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from examples.retail.store import RETAIL_DATA

from deputy.domain.scenarios import ToolCallExpectation
from deputy.sandbox.tau2 import (
    MAX_TURNS,
    Tau2Task,
    Tau2TaskError,
    load_tau2_tasks,
    tau2_suite,
    tau2_task_id,
)

MOCK_DATA = RETAIL_DATA.parent / "mock"


def _raw_tasks(domain: Path = RETAIL_DATA) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = json.loads((domain / "tasks.json").read_text())
    return tasks


def _domain(tmp_path: Path, tasks: Any, splits: Any | None = None) -> Path:
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    if splits is not None:
        (tmp_path / "split_tasks.json").write_text(json.dumps(splits))
    return tmp_path


def test_the_retail_train_split_loads_in_file_order() -> None:
    everything = load_tau2_tasks(RETAIL_DATA)
    train = load_tau2_tasks(RETAIL_DATA, split="train")
    assert len(everything) == 74
    assert [t.id for t in train] == [t["id"] for t in _raw_tasks()]
    assert train == everything


def test_every_retail_task_becomes_a_scenario_that_maps_back_to_it() -> None:
    raw = {task["id"]: task for task in _raw_tasks()}
    suite = tau2_suite(load_tau2_tasks(RETAIL_DATA, split="train"), name="tau2 retail (train)")
    assert suite.name == "tau2 retail (train)" and len(suite.scenarios) == 74
    for scenario in suite.scenarios:
        task_id = tau2_task_id(scenario)
        assert task_id is not None and scenario.id == f"task_{task_id}"
        criteria = raw[task_id]["evaluation_criteria"]
        actions = scenario.assertions.reference_actions
        assert [(a.tool, a.arguments) for a in actions] == [
            (a["name"], a["arguments"]) for a in criteria["actions"]
        ]
        assert scenario.assertions.reward_basis == tuple(criteria["reward_basis"])
        assert scenario.assertions.judge == tuple(criteria["nl_assertions"] or ())
        assert scenario.assertions.must_communicate == tuple(criteria["communicate_info"] or ())
        assert scenario.kind == "happy_path" and scenario.max_turns == MAX_TURNS


def test_the_customer_brief_is_the_user_scenario() -> None:
    [task] = [t for t in load_tau2_tasks(RETAIL_DATA) if t.id == "0"]
    [scenario] = tau2_suite([task], name="one").scenarios
    brief = scenario.customer
    assert brief.goal.startswith("You received your order #W2378156 and wish to exchange")
    assert brief.persona == (
        "You are detail-oriented and want to make sure everything is addressed in one go."
    )
    assert brief.knows == {"known_info": "You are Yusuf Rossi in zip code 19122."}
    assert brief.unknowns == ("You do not remember your email address.",)
    assert scenario.title.startswith("You received your order #W2378156")
    assert len(scenario.title) <= 120 and scenario.title.endswith("…")
    # Task 10 has no unknown info.
    [ten] = tau2_suite(
        [t for t in load_tau2_tasks(RETAIL_DATA) if t.id == "10"], name="x"
    ).scenarios
    assert ten.customer.unknowns == ()


def test_compare_args_narrow_the_expected_calls_not_the_reference_actions() -> None:
    [task] = [t for t in load_tau2_tasks(RETAIL_DATA) if t.id == "10"]
    [scenario] = tau2_suite([task], name="one").scenarios
    transfer = scenario.assertions.reference_actions[-1]
    assert transfer.tool == "transfer_to_human_agents" and "summary" in transfer.arguments
    assert scenario.assertions.expected_tool_calls[-1] == ToolCallExpectation(
        tool="transfer_to_human_agents", arguments={}
    )
    # Without compare_args, the expected call has every argument.
    assert (
        scenario.assertions.expected_tool_calls[:-1] == scenario.assertions.reference_actions[:-1]
    )
    assert scenario.assertions.must_communicate == ()


def test_communicate_info_and_nl_assertions() -> None:
    tasks = {t.id: t for t in load_tau2_tasks(RETAIL_DATA)}
    [sixteen, nineteen] = tau2_suite([tasks["16"], tasks["19"]], name="two").scenarios
    assert sixteen.assertions.must_communicate == ("8276.23",)
    assert nineteen.assertions.must_communicate == ("54.04", "41.64")
    assert set(nineteen.assertions.reward_basis) == {"DB", "NL_ASSERTION"}


def test_the_mock_domain_plain_instructions_and_default_reward_basis() -> None:
    tasks = {t.id: t for t in load_tau2_tasks(MOCK_DATA)}
    [create, impossible] = tau2_suite(
        [tasks["create_task_1"], tasks["impossible_task_1"]], name="mock"
    ).scenarios
    assert create.id == "task_create_task_1"
    assert create.customer.goal.startswith("You are a team member who needs to create a task")
    assert create.customer.persona.startswith("Professional and direct communicator")
    assert create.assertions.reward_basis == ("DB", "COMMUNICATE")  # tau2's default
    assert create.assertions.judge == ("The agent confirmed the task was created successfully",)
    assert impossible.assertions.reward_basis == ("DB", "ACTION")


@pytest.mark.parametrize(
    ("task_id", "reason"),
    [
        ("create_task_1_with_env_assertions", "the ENV_ASSERTION reward component"),
        ("update_task_with_message_history", "an initial state"),
        ("update_task_with_initialization_actions", "an initial state"),
    ],
)
def test_what_the_sandbox_cannot_honour_is_refused_naming_the_task(
    task_id: str, reason: str
) -> None:
    [task] = [t for t in load_tau2_tasks(MOCK_DATA) if t.id == task_id]
    with pytest.raises(Tau2TaskError, match=re.escape(f"tau2 task {task_id!r}: {reason}")):
        tau2_suite([task], name="mock")


def test_actions_of_the_users_own_tools_are_refused() -> None:
    raw = _raw_tasks()[0]
    raw["evaluation_criteria"]["actions"][0]["requestor"] = "user"
    with pytest.raises(Tau2TaskError, match="an action of the user's own tools is not supported"):
        tau2_suite([Tau2Task.model_validate(raw)], name="x")


def test_scenario_ids_are_sanitised_and_kept_unique() -> None:
    raw = _raw_tasks()[0]
    tasks = [Tau2Task.model_validate({**raw, "id": task_id}) for task_id in ("Ab-1 ", "ab_1", "7")]
    suite = tau2_suite(tasks, name="ids")
    assert [s.id for s in suite.scenarios] == ["task_ab_1", "task_ab_1_2", "task_7"]
    assert [tau2_task_id(s) for s in suite.scenarios] == ["Ab-1 ", "ab_1", "7"]
    long = Tau2Task.model_validate({**raw, "id": "x" * 100})
    assert tau2_suite([long], name="long").scenarios[0].id == "task_" + "x" * 59


def test_a_split_selects_its_tasks(tmp_path: Path) -> None:
    raw = _raw_tasks()[:3]
    domain = _domain(tmp_path, raw, {"train": ["2", "0"], "test": ["1"]})
    assert [t.id for t in load_tau2_tasks(domain, split="train")] == ["0", "2"]
    assert [t.id for t in load_tau2_tasks(domain, split="test")] == ["1"]
    with pytest.raises(Tau2TaskError, match=r"unknown split 'dev' .*\(splits: test, train\)"):
        load_tau2_tasks(domain, split="dev")


def test_a_split_naming_absent_tasks_is_an_error(tmp_path: Path) -> None:
    domain = _domain(tmp_path, _raw_tasks()[:1], {"test": ["0", "999"]})
    with pytest.raises(Tau2TaskError, match=r"split 'test' lists tasks that .* does not have: 999"):
        load_tau2_tasks(domain, split="test")


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(Tau2TaskError, match=f"no tasks.json in {re.escape(str(tmp_path))}"):
        load_tau2_tasks(tmp_path)
    shutil.copy(RETAIL_DATA / "tasks.json", tmp_path / "tasks.json")
    with pytest.raises(Tau2TaskError, match=r"no split_tasks\.json in"):
        load_tau2_tasks(tmp_path, split="train")


def test_a_malformed_task_is_named(tmp_path: Path) -> None:
    raw = _raw_tasks()[:2]
    del raw[1]["user_scenario"]
    with pytest.raises(Tau2TaskError, match=r"task '1' of .* is malformed: user_scenario: Field"):
        load_tau2_tasks(_domain(tmp_path, raw))
    raw = _raw_tasks()[:1]
    raw[0]["evaluation_criteria"]["reward_basis"] = ["DB", "SPEED"]
    with pytest.raises(Tau2TaskError, match=r"task '0' of .* is malformed"):
        load_tau2_tasks(_domain(tmp_path, raw))
    (tmp_path / "tasks.json").write_text("{not json")
    with pytest.raises(Tau2TaskError, match="is not valid JSON"):
        load_tau2_tasks(tmp_path)
    with pytest.raises(Tau2TaskError, match="must hold a list of tasks"):
        load_tau2_tasks(_domain(tmp_path, {"0": {}}))


def test_repeated_task_ids_are_an_error(tmp_path: Path) -> None:
    raw = _raw_tasks()[:1] * 2
    with pytest.raises(Tau2TaskError, match="repeats task ids: 0"):
        load_tau2_tasks(_domain(tmp_path, raw))


def test_a_task_that_does_not_fit_a_scenario_is_named() -> None:
    raw = _raw_tasks()[0]
    raw["user_scenario"]["instructions"]["reason_for_call"] = "x" * 2001
    with pytest.raises(Tau2TaskError, match="tau2 task '0' cannot be a scenario: goal"):
        tau2_suite([Tau2Task.model_validate(raw)], name="x")
