"""What the material readers share: the error a reader raises when a whole file is unusable,
the separator of anchor paths, and the snake_case names tools get."""

from __future__ import annotations

import re

from deputy.builder.sources import MaterialProblem, MaterialRef, ProblemCode

PATH_SEPARATOR = " › "
"""Between the parts of a structured anchor's label: `Product Defect › Initiate Refund`."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_SNAKE = re.compile(r"[^a-z0-9]+")


class Unreadable(Exception):
    """Nothing in the file can be used; `read_material` turns it into the file's problem.
    `message` is for the person who uploaded the file: what is wrong and what to do."""

    def __init__(self, code: ProblemCode, message: str) -> None:
        super().__init__(message)
        self.code: ProblemCode = code
        self.message = message

    def problem(self, ref: MaterialRef) -> MaterialProblem:
        return MaterialProblem(ref, self.code, self.message)


def quoted(name: str) -> str:
    """A file or item name as it appears in messages: `"policy.pdf"`."""
    return f'"{name}"'


def snake_name(name: str) -> str | None:
    """A spec identifier for a tool name (`getOrder` → `get_order`, `Cancel Order` →
    `cancel_order`), at most 64 characters; None when nothing usable is left."""
    snake = _NOT_SNAKE.sub("_", _CAMEL.sub("_", name.strip()).lower()).strip("_")
    if not snake:
        return None
    if not snake[0].isalpha():
        snake = f"op_{snake}"
    return snake[:64].rstrip("_")
