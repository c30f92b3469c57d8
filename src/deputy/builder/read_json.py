"""JSON and YAML materials: what a file is, recognised from its shape, and read by the reader
of that kind.

JSON may be: ABCD agent guidelines; a STAR task flowchart (`task`, `graph`, `replies`); STAR
dialogues (objects with `Events`, one or a list); ABCD conversations (objects with `original`,
a list, or a map of such lists); transcripts in Deputy's format (`conversations` or `turns`);
tau2-style tool descriptions (`tools` lists, a map of domains, or a list of tools typed READ /
WRITE); an OpenAPI 3 document. YAML may be an OpenAPI 3 document or transcripts in Deputy's
format. Swagger 2 is refused with a request to convert it; anything else is reported with the
list of what is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from deputy.builder.read_common import Unreadable, quoted
from deputy.builder.read_flowchart import is_star_flowchart, read_star_flowchart
from deputy.builder.read_guidelines import is_abcd_guidelines, read_abcd_guidelines
from deputy.builder.read_tools import read_openapi, read_tau2, tau2_tool_lists
from deputy.builder.read_transcripts import (
    is_abcd_conversation,
    is_star_dialogue,
    own_conversations,
    read_abcd,
    read_own,
    read_star,
)
from deputy.builder.sources import MaterialRef, ReadResult
from deputy.knowledge.parse import decode_text

YAML = "application/yaml"
ACCEPTED_JSON = (
    "agent guidelines (ABCD guidelines.json), a task flowchart (STAR: task, replies, graph), "
    "conversations (Deputy's format with conversations/turns, STAR dialogues, ABCD "
    "conversations), tool descriptions (a list of tools with name, type READ/WRITE, "
    "description and parameters) or an OpenAPI 3 document"
)
ACCEPTED_YAML = "an OpenAPI 3 document or conversations in Deputy's format (conversations/turns)"


def _parse(ref: MaterialRef, text: str, is_yaml: bool) -> Any:
    """The parsed value; a syntax error becomes a `damaged` problem with its line and column."""
    if is_yaml:
        try:
            return yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            detail = exc.problem or "invalid YAML"
        except yaml.YAMLError as exc:
            where, detail = "", str(exc)
        raise Unreadable(
            "damaged",
            f"{quoted(ref.name)} is not valid YAML{where}: {detail}. Fix the file (a YAML "
            "validator shows the place) and upload it again.",
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Unreadable(
            "damaged",
            f"{quoted(ref.name)} is not valid JSON at line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}. The file may be cut short; export it again and upload the new copy.",
        ) from exc


def _abcd_conversations(value: Any) -> list[Mapping[str, Any]] | None:
    if is_abcd_conversation(value):
        return [value]
    if isinstance(value, list) and value and all(map(is_abcd_conversation, value)):
        return list(value)
    if isinstance(value, Mapping) and value:
        splits = list(value.values())
        if all(isinstance(s, list) and s and all(map(is_abcd_conversation, s)) for s in splits):
            return [conversation for split in splits for conversation in split]
    return None


def _openapi(ref: MaterialRef, value: Any) -> ReadResult | None:
    """An OpenAPI or Swagger document's result, or None when the value is neither."""
    if not isinstance(value, Mapping):
        return None
    if "swagger" in value:
        raise Unreadable(
            "unsupported",
            f"{quoted(ref.name)} is a Swagger {value['swagger']} document; Deputy reads OpenAPI "
            "3. Convert it to OpenAPI 3 (for example with the Swagger Editor's \"Convert to "
            'OpenAPI 3") and upload the result.',
        )
    if "openapi" not in value:
        return None
    if not str(value["openapi"]).startswith("3"):
        raise Unreadable(
            "unsupported",
            f"{quoted(ref.name)} is OpenAPI {value['openapi']}; Deputy reads OpenAPI 3.0 and "
            "3.1. Convert the document and upload it again.",
        )
    return read_openapi(ref, value)


def read_structured(ref: MaterialRef, data: bytes, media_type: str) -> ReadResult:
    """A JSON or YAML material, read as the kind its shape shows. Raises `Unreadable`."""
    is_yaml = media_type == YAML
    text = decode_text(data)
    if not text.strip():
        raise Unreadable("empty", f"{quoted(ref.name)} is empty. Upload a file with content.")
    value = _parse(ref, text, is_yaml)
    if value is None or value == [] or value == {}:
        raise Unreadable("empty", f"{quoted(ref.name)} holds no data. Upload a file with content.")
    openapi = _openapi(ref, value)
    if openapi is not None:
        return openapi
    conversations = own_conversations(value)
    if conversations is not None:
        return read_own(ref, conversations)
    if not is_yaml:
        result = _read_json_shape(ref, value)
        if result is not None:
            return result
    accepted = ACCEPTED_YAML if is_yaml else ACCEPTED_JSON
    raise Unreadable(
        "unrecognised_json",
        f"Deputy does not recognise what {quoted(ref.name)} holds. It accepts {accepted}. "
        "Upload prose documents as Markdown, text, PDF or DOCX instead.",
    )


def _read_json_shape(ref: MaterialRef, value: Any) -> ReadResult | None:
    if is_star_flowchart(value):
        try:
            section = read_star_flowchart(ref, value)
        except ValueError as exc:
            raise Unreadable(
                "invalid_content", f"{quoted(ref.name)} is a malformed task flowchart: {exc}."
            ) from exc
        return ReadResult(ref, "guidelines", outlines=(section,))
    if is_star_dialogue(value):
        return read_star(ref, [value])
    if isinstance(value, list) and value and all(map(is_star_dialogue, value)):
        return read_star(ref, value)
    abcd = _abcd_conversations(value)
    if abcd is not None:
        return read_abcd(ref, abcd)
    tools = tau2_tool_lists(value)
    if tools is not None:
        return read_tau2(ref, tools)
    if is_abcd_guidelines(value):
        return read_abcd_guidelines(ref, value)
    return None
