"""What the builder benchmark hands the builder, made from the shared data: ABCD's guidelines as
JSON and as a Markdown rendering, a tool file for ABCD's actions and for each STAR task's API,
and each STAR task's flowchart and dialogues.

Nothing here is an answer: the tool files describe what the agent can call (a business gives
its API description with its SOPs), the renderings say what the JSON says. `kb.json` (the
required action sequences) never goes in."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deputy.builder.pipeline import MaterialInput
from deputy.builder.sources import MaterialRef

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DEPUTY_SHARED_DIR", REPO.parent / "shared")) / "data"
ABCD = DATA / "abcd" / "data"
STAR = DATA / "star"
JSON = "application/json"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def material(material_id: str, name: str, media_type: str, data: bytes | str) -> MaterialInput:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return MaterialInput(MaterialRef(material_id, name, media_type), raw)


def guidelines_markdown(guidelines: Mapping[str, Any]) -> str:
    """ABCD's guidelines as an agent handbook: a heading per flow (its description under it), a
    heading per subflow, its instructions as paragraphs, its actions as a numbered list (the
    button in bold, the action's text, the subtext as nested bullets)."""
    lines = ["# Agent guidelines", ""]
    for flow, body in guidelines.items():
        lines += [f"## {flow}", "", f"{str(body.get('description', '')).capitalize()}.", ""]
        for name, subflow in body["subflows"].items():
            instructions = [str(text).strip() for text in subflow.get("instructions", [])]
            lines += [f"### {name}", ""]
            if instructions:
                lines += [instructions[0], ""]
            for number, action in enumerate(subflow.get("actions", []), start=1):
                button = str(action.get("button", "")).strip()
                label = f"**{button}**: " if button and button.upper() != "N/A" else ""
                lines.append(f"{number}. {label}{str(action.get('text', '')).strip()}")
                lines += [f"   - {str(sub).strip()}" for sub in action.get("subtext", [])]
            lines.append("")
            lines += [text for text in instructions[1:] for text in (text, "")]
    return "\n".join(lines)


def _tool(
    name: str, effect: str, description: str, parameters: list[dict[str, Any]]
) -> dict[str, Any]:
    return {"name": name, "type": effect, "description": description, "parameters": parameters}


def abcd_tools(ontology: Mapping[str, Any]) -> list[dict[str, Any]]:
    """ABCD's agent actions (ontology.json `actions`) as a tool file: one tool per action, its
    slots as string parameters; kb queries and FAQ actions read, interactions write."""
    tools = []
    for group, actions in ontology["actions"].items():
        effect = "WRITE" if group == "interaction" else "READ"
        for action, slots in actions.items():
            parameters = [
                {"name": slot, "type": "string", "required": False, "description": slot}
                for slot in slots
            ]
            words = action.replace("-", " ")
            tools.append(_tool(action.replace("-", "_"), effect, f"{words} ({group})", parameters))
    return tools


_STAR_TYPES = {"Integer": "integer", "Boolean": "boolean"}


def snake_case(name: str) -> str:
    """`RequestType` → `request_type`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def star_tools(task: str) -> list[dict[str, Any]]:
    """A STAR task's API schema (apis/apis/<task>.json) as a tool file. An API that books
    (its RequestType can be Book) writes; the others read. Parameter names are given in
    snake_case (`RequestType` → `request_type`): the extractor turns parameters into slot ids
    and fails on CamelCase ones."""
    api = load(STAR / "apis" / "apis" / f"{task}.json")
    required = set(api.get("required", []))
    parameters = []
    books = False
    for field in api["input"]:
        categories = field.get("Categories") or []
        books = books or (field["Type"] == "RequestType" and "Book" in categories)
        described = field.get("ReadableName", field["Name"])
        if categories:
            described += f" (one of: {', '.join(map(str, categories))})"
        parameters.append(
            {
                "name": snake_case(field["Name"]),
                "type": _STAR_TYPES.get(field["Type"], "string"),
                "required": field["Name"] in required,
                "description": described,
            }
        )
    outputs = ", ".join(field.get("ReadableName", field["Name"]) for field in api["output"])
    description = f"Query the {api['db']} database ({task.replace('_', ' ')}); returns {outputs}."
    return [_tool(task, "WRITE" if books else "READ", description, parameters)]


def star_flowchart(task: str) -> dict[str, Any]:
    flowchart: dict[str, Any] = load(STAR / "tasks" / task / f"{task}.json")
    return flowchart


def star_dialogues(task: str) -> list[dict[str, Any]]:
    """The dialogues whose wizard could do only `task` (the benchmark selects them; the
    builder gets them as one file and is not told the task)."""
    chosen = []
    folder = STAR / "dialogues"
    for path in sorted(folder.glob("*.json"), key=lambda p: int(p.stem)):
        dialogue = load(path)
        tasks = [c["Task"] for c in dialogue["Scenario"]["WizardCapabilities"]]
        if tasks == [task]:  # only the conversation goes in, not the scenario that names it
            chosen.append(
                {key: dialogue[key] for key in ("DialogueID", "CompletionLevel", "Events")}
            )
    return chosen
