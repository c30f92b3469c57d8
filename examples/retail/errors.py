"""The one error the retail toolkit raises. Its message is what tau2's toolkit would say."""

from __future__ import annotations


class RetailError(Exception):
    """A refused request: unknown id, wrong status, bad argument, insufficient balance..."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(RetailError):
    """An id that names no user, order, product, item or payment method."""

    status_code = 404
