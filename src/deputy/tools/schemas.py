"""Argument validation against a tool's JSON Schema (`jsonschema_rs`), with precise paths.

Schemas are compiled offline: a `$ref` to a remote document is never fetched."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

MAX_ERRORS = 20


class InvalidSchema(ValueError):
    """The tool's own schema is not a usable JSON Schema (a spec or source defect)."""


@dataclass(frozen=True)
class ArgumentError:
    path: str
    """Dotted path of the offending value (`items.0.quantity`); empty for the arguments object."""
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path or "(arguments)", "message": self.message}


def dotted(parts: list[str | int]) -> str:
    return ".".join(str(part) for part in parts)


class ArgumentValidator:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        try:
            self._validator = jsonschema_rs.validator_for(dict(schema), offline=True)
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
            raise InvalidSchema(str(exc).splitlines()[0]) from exc

    def errors(self, arguments: Mapping[str, Any]) -> list[ArgumentError]:
        found: list[ArgumentError] = []
        try:
            for error in self._validator.iter_errors(dict(arguments)):
                found.append(ArgumentError(dotted(list(error.instance_path)), error.message))
                if len(found) >= MAX_ERRORS:
                    break
        except (jsonschema_rs.ReferencingError, ValueError) as exc:
            raise InvalidSchema(str(exc).splitlines()[0]) from exc
        found.sort(key=lambda e: (e.path, e.message))
        return found
