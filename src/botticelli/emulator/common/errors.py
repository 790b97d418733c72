"""``WireError``: a request the server refuses, as data rather than as an HTTP response.

Validation raises it; each caller decides what it becomes: the HTTP layer an error response in
its wire format's body and headers, the Batch API an error line of its output file. No caller
has to decode a response back to learn what went wrong.
"""

from __future__ import annotations


class WireError(Exception):
    """The HTTP ``status`` and the fields of the error body (``code`` and ``param`` optional;
    ``extra``: more fields of the body's error object, e.g. Groq's ``failed_generation``)."""

    __slots__ = ("code", "extra", "message", "param", "status", "type")

    def __init__(
        self,
        status: int,
        message: str,
        type: str,
        *,
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.extra = extra or {}

    def __repr__(self) -> str:
        extra = "".join(
            f", {name}={value!r}" for name, value in (("code", self.code), ("param", self.param)) if value
        )
        return f"WireError({self.status}, {self.message!r}, {self.type!r}{extra})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WireError):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def _fields(self) -> tuple[int, str, str, str | None, str | None, tuple[tuple[str, str], ...]]:
        return (
            self.status,
            self.message,
            self.type,
            self.code,
            self.param,
            tuple(sorted(self.extra.items())),
        )
