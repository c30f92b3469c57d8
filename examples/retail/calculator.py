"""tau2's `calculate` tool without `eval`: + - * / ** // and parentheses over decimal numbers.

The accepted character set, the rounding (`round(float(result), 2)`) and the error messages follow
tau2, which evaluates the expression with Python's `eval`. One deliberate difference: an integer
power with an exponent above 1,000 is refused instead of computed (it could hang the server).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable

from examples.retail.errors import RetailError

ALLOWED_CHARACTERS = frozenset("0123456789+-*/(). ")
MAX_EXPONENT = 1000

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _evaluate(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        value = node.value
        assert isinstance(value, int | float)
        return value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise RetailError("Exponent too large")
        return _BINARY[type(node.op)](left, right)
    raise RetailError("Invalid expression")


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression; the result is rounded to 2 decimals, as a string."""
    if not all(character in ALLOWED_CHARACTERS for character in expression):
        raise RetailError("Invalid characters in expression")
    try:
        # eval() strips leading spaces and tabs before compiling; so does this.
        tree = ast.parse(expression.lstrip(" \t"), filename="<string>", mode="eval")
    except SyntaxError as error:
        raise RetailError(str(error)) from error
    try:
        value = _evaluate(tree.body)
        return str(round(float(value), 2))
    except (ArithmeticError, ValueError, TypeError) as error:
        raise RetailError(str(error)) from error
