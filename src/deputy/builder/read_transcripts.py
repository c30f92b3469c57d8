"""Transcripts in JSON (Deputy's own format, STAR dialogues, ABCD conversations) and the speaker
roles that every transcript reader shares.

Deputy's transcript format, the one Deputy exports (JSON, or the same structure in YAML):

    {"conversations": [
      {"id": "c-17",
       "metadata": {"channel": "chat"},
       "turns": [
         {"speaker": "customer", "text": "Please cancel order 123."},
         {"speaker": "action", "text": "order 123 is pending", "action": "get_order_details",
          "arguments": {"order_id": "123"}},
         {"speaker": "agent", "text": "Done, it is cancelled.", "action": "confirm_cancel"}]}]}

A single conversation object (`{"id", "turns"}`) or a JSON list of them is accepted too.
`speaker` is `customer`, `agent`, `action` (what the agent did in its tools) or `system`; the
usual synonyms (user, assistant, bot, ...) are read as those. `action` names the tool an action
turn called, or the canned reply an agent turn used; `arguments` are its inputs (values are
kept as strings, JSON-encoded when they are not strings). `id` and `metadata` (string values)
are optional: conversations without an id are numbered from 1.

STAR dialogues keep the user's and the wizard's utterances, the wizard's picked suggestions (an
agent turn whose `action` is the reply label) and its API queries (an `action` turn: the API
name and its constraints); the knowledge base's answers are kept as `system` turns that say
what came back, so a reader sees whether a query found something. User-guide instructions and
suggestion requests are left out, and so is the scenario (its task names are the answers a
benchmark checks). ABCD conversations are read from `original`; their scenario (flow and
subflow: the labels) is left out for the same reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from deputy.builder.read_common import Unreadable, quoted
from deputy.builder.sources import (
    MaterialProblem,
    MaterialRef,
    ReadResult,
    Speaker,
    Transcript,
    Turn,
)

_CUSTOMER_WORDS = frozenset({"customer", "user", "client", "caller", "visitor"})
_AGENT_WORDS = frozenset(
    {"agent", "assistant", "bot", "representative", "rep", "support", "wizard", "operator"}
)
_OTHER_WORDS: dict[str, Speaker] = {"action": "action", "system": "system", "note": "system"}
_WORD = re.compile(r"[a-z]+")
_PARENTHESISED = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_SUMMARY_LIMIT = 600


def speaker_role(label: str) -> Speaker | None:
    """The role a speaker label names: the whole label or its first or last word ("Support
    Agent", "Customer (Jane)", "Agent Smith"); agent words win over customer words ("Customer
    Service Rep"). None for a label that names no role ("Maria")."""
    words = _WORD.findall(_PARENTHESISED.sub(" ", label.lower()))
    if not words:
        return None
    candidates = {words[0], words[-1]}
    if candidates & _AGENT_WORDS:
        return "agent"
    if candidates & _CUSTOMER_WORDS:
        return "customer"
    for word in (words[0], words[-1]):
        if word in _OTHER_WORDS:
            return _OTHER_WORDS[word]
    return None


def assign_speakers(labels: Sequence[str]) -> tuple[dict[str, Speaker], str | None]:
    """Roles for the speaker labels of one conversation, in the order they speak. Labels that
    name a role get it; the others (people's names) are the other party when only one role is
    named, `system` when both are, and when none is, the first to speak is taken to be the agent
    and the rest customers. The second value says which roles were guessed, or None."""
    roles: dict[str, Speaker] = {}
    unknown: list[str] = []
    for label in dict.fromkeys(labels):
        role = speaker_role(label)
        if role is None:
            unknown.append(label)
        else:
            roles[label] = role
    if not unknown:
        return roles, None
    named = set(roles.values())
    for position, label in enumerate(unknown):
        if "agent" in named and "customer" in named:
            roles[label] = "system"
        elif "agent" in named:
            roles[label] = "customer"
        elif "customer" in named:
            roles[label] = "agent"
        else:
            roles[label] = "agent" if position == 0 else "customer"
    guessed = ", ".join(f"{label}={roles[label]}" for label in unknown)
    return roles, f"{guessed} (guessed from who speaks)"


def transcript_from_segments(
    ref: MaterialRef,
    conversation: str,
    segments: Iterable[tuple[str, str]],
    metadata: Mapping[str, str] | None = None,
) -> Transcript:
    """A transcript from (speaker label, text) pairs: roles by `assign_speakers` (a guess is
    recorded in the metadata as `speakers`), turns numbered from 1, empty texts dropped."""
    kept = [(label.strip(), text.strip()) for label, text in segments if text.strip()]
    roles, guessed = assign_speakers([label for label, _ in kept])
    turns = tuple(
        Turn(index=number, speaker=roles[label], text=text)
        for number, (label, text) in enumerate(kept, start=1)
    )
    info = dict(metadata or {})
    if guessed is not None:
        info["speakers"] = guessed
    return Transcript(material=ref, id=conversation, turns=turns, metadata=info)


def _string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# ---- Deputy's own format ------------------------------------------------------------------


def _own_turn(raw: Any, number: int) -> Turn:
    if not isinstance(raw, Mapping):
        raise ValueError(f"turn {number} is not an object")
    label, text, action = raw.get("speaker"), raw.get("text", ""), raw.get("action")
    role = speaker_role(label) if isinstance(label, str) else None
    if role is None:
        raise ValueError(
            f"turn {number} has speaker {label!r}; expected customer, agent, action or system"
        )
    if not isinstance(text, str) or (not text.strip() and not isinstance(action, str)):
        raise ValueError(f"turn {number} has no text")
    arguments = raw.get("arguments") or {}
    if not isinstance(arguments, Mapping):
        raise ValueError(f"turn {number}: `arguments` must be an object")
    return Turn(
        index=number,
        speaker=role,
        text=text.strip(),
        action=action if isinstance(action, str) and action else None,
        arguments={str(key): _string(value) for key, value in arguments.items()},
    )


def own_conversations(value: Any) -> list[Any] | None:
    """The conversation objects of a value in Deputy's format, or None when it is not one."""
    if isinstance(value, Mapping) and isinstance(value.get("conversations"), list):
        return list(value["conversations"])
    if isinstance(value, Mapping) and isinstance(value.get("turns"), list):
        return [value]
    if (
        isinstance(value, list)
        and value
        and all(isinstance(item, Mapping) and isinstance(item.get("turns"), list) for item in value)
    ):
        return list(value)
    return None


def read_own(ref: MaterialRef, conversations: Sequence[Any]) -> ReadResult:
    """Deputy's format. A conversation with a bad turn is left out with a problem that names
    it and the turn; the others are read."""
    transcripts: list[Transcript] = []
    problems: list[MaterialProblem] = []
    seen: set[str] = set()
    for position, raw in enumerate(conversations, start=1):
        name = f"conversation {position}"
        try:
            if not isinstance(raw, Mapping) or not isinstance(raw.get("turns"), list):
                raise ValueError("it has no `turns` list")
            identifier = str(raw["id"]) if raw.get("id") is not None else str(position)
            name = f"conversation {identifier!r}"
            if identifier in seen:
                raise ValueError("another conversation has the same id")
            metadata = raw.get("metadata") or {}
            if not isinstance(metadata, Mapping):
                raise ValueError("`metadata` must be an object")
            turns = tuple(_own_turn(turn, n) for n, turn in enumerate(raw["turns"], start=1))
            if not turns:
                raise ValueError("it has no turns")
        except ValueError as exc:
            problems.append(
                MaterialProblem(
                    ref,
                    "invalid_content",
                    f"{quoted(ref.name)}: {name} was left out because {exc}. Fix it and upload "
                    "the file again to include it.",
                )
            )
            continue
        seen.add(identifier)
        transcripts.append(
            Transcript(
                material=ref,
                id=identifier,
                turns=turns,
                metadata={str(k): _string(v) for k, v in metadata.items()},
            )
        )
    if not transcripts and not problems:
        raise Unreadable("empty", f"{quoted(ref.name)} holds no conversations.")
    return ReadResult(
        ref,
        "transcripts" if transcripts else None,
        transcripts=tuple(transcripts),
        problems=tuple(problems),
    )


# ---- STAR ----------------------------------------------------------------------------------

_IS_EQUAL = re.compile(r"^api\.is_equal_to\((.*)\)$", re.DOTALL)


def _constraint_value(value: Any) -> str:
    """`api.is_equal_to("Dr. Johnson")` → `Dr. Johnson`, `"Alexis"` → `Alexis`; other
    constraint functions (`api.is_one_of([...])`, `api.is_at_least(3)`) stay as written."""
    text = _string(value).strip()
    match = _IS_EQUAL.match(text)
    if match:
        text = match.group(1).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text


def _knowledge_base_answer(event: Mapping[str, Any]) -> str:
    api = str(event.get("APIName") or "the knowledge base")
    item = event.get("Item")
    total = event.get("TotalItems")
    if not isinstance(item, Mapping) or not item:
        return f"{api} found nothing"
    fields = "; ".join(
        f"{key}: {_string(value)}" for key, value in item.items() if key not in ("APIName", "id")
    )
    count = f" (1 of {total} results)" if isinstance(total, int) and total > 1 else ""
    return f"{api} returned{count}: {fields}"[:_SUMMARY_LIMIT]


def _star_turn(event: Mapping[str, Any], number: int) -> Turn | None:
    action, agent, text = event.get("Action"), event.get("Agent"), event.get("Text")
    text = text.strip() if isinstance(text, str) else ""
    if action == "utter" and agent in ("User", "Wizard") and text:
        return Turn(number, "customer" if agent == "User" else "agent", text)
    if action == "pick_suggestion" and agent == "Wizard" and text:
        label = event.get("ActionLabel")
        return Turn(number, "agent", text, action=label if isinstance(label, str) else None)
    if action == "query" and agent == "Wizard":
        api = str(event.get("APIName") or "query")
        arguments: dict[str, str] = {}
        for constraint in event.get("Constraints") or []:
            if isinstance(constraint, Mapping):
                for key, value in constraint.items():
                    arguments[str(key)] = _constraint_value(value)
        shown = ", ".join(f"{key}={value}" for key, value in arguments.items())
        return Turn(number, "action", f"{api}({shown})", action=api, arguments=arguments)
    if action == "return_item" and agent == "KnowledgeBase":
        return Turn(number, "system", _knowledge_base_answer(event))
    return None


def is_star_dialogue(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("Events"), list)


def read_star(ref: MaterialRef, dialogues: Sequence[Mapping[str, Any]]) -> ReadResult:
    transcripts: list[Transcript] = []
    problems: list[MaterialProblem] = []
    for position, dialogue in enumerate(dialogues, start=1):
        identifier = str(dialogue.get("DialogueID", position))
        turns: list[Turn] = []
        for event in dialogue["Events"]:
            turn = _star_turn(event, len(turns) + 1) if isinstance(event, Mapping) else None
            if turn is not None:
                turns.append(turn)
        if not turns:
            problems.append(
                MaterialProblem(
                    ref,
                    "invalid_content",
                    f"{quoted(ref.name)}: dialogue {identifier} has no utterances; it was left "
                    "out.",
                )
            )
            continue
        metadata = {
            key: str(dialogue[key])
            for key in ("CompletionLevel", "DialogueID")
            if dialogue.get(key) is not None
        }
        transcripts.append(Transcript(ref, identifier, tuple(turns), metadata))
    return ReadResult(
        ref,
        "transcripts" if transcripts else None,
        transcripts=tuple(transcripts),
        problems=tuple(problems),
    )


# ---- ABCD ----------------------------------------------------------------------------------


def is_abcd_conversation(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("original"), list)


def read_abcd(ref: MaterialRef, conversations: Sequence[Mapping[str, Any]]) -> ReadResult:
    transcripts: list[Transcript] = []
    problems: list[MaterialProblem] = []
    for position, conversation in enumerate(conversations, start=1):
        identifier = str(conversation.get("convo_id", position))
        segments: list[tuple[str, str]] = []
        for entry in conversation["original"]:
            if (
                isinstance(entry, list)
                and len(entry) == 2
                and all(isinstance(part, str) for part in entry)
            ):
                segments.append((entry[0], entry[1]))
        if not segments:
            problems.append(
                MaterialProblem(
                    ref,
                    "invalid_content",
                    f"{quoted(ref.name)}: conversation {identifier} has no [speaker, text] "
                    "turns; it was left out.",
                )
            )
            continue
        transcripts.append(transcript_from_segments(ref, identifier, segments))
    return ReadResult(
        ref,
        "transcripts" if transcripts else None,
        transcripts=tuple(transcripts),
        problems=tuple(problems),
    )
