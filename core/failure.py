"""A small ``Failure``: an exception together with the questions Twisted code asks of it.

tapster has no Deferreds, but ``connectionLost(reason)``,
``clientConnectionFailed(connector, reason)`` and friends keep Twisted's
signatures, and plugin authors write ``reason.check(ConnectionDone)`` or
``reason.getErrorMessage()``. This class answers those without capturing
frames: building one must stay cheap because every closed connection makes one.
"""

from __future__ import annotations

import traceback
from typing import NoReturn

__all__ = ["Failure"]


class Failure:
    """Wraps an exception instance; ``value`` is the exception, ``type`` its class."""

    __slots__ = ("value", "type", "tb")

    def __init__(self, exc_value: BaseException | None = None) -> None:
        if exc_value is None:
            import sys

            exc_value = sys.exc_info()[1]
            if exc_value is None:
                raise ValueError("Failure() outside an except block needs an exception")
        if isinstance(exc_value, type):
            exc_value = exc_value()
        self.value: BaseException = exc_value
        self.type: type[BaseException] = type(exc_value)
        self.tb = exc_value.__traceback__

    def check(self, *errorTypes: type[BaseException]) -> type[BaseException] | None:
        """Return the first of ``errorTypes`` this failure is an instance of, else None."""
        for kind in errorTypes:
            if isinstance(self.value, kind):
                return kind
        return None

    def trap(self, *errorTypes: type[BaseException]) -> type[BaseException]:
        """Like :meth:`check`, but re-raise the exception when nothing matches."""
        kind = self.check(*errorTypes)
        if kind is None:
            self.raiseException()
        return kind

    def raiseException(self) -> NoReturn:
        raise self.value.with_traceback(self.tb)

    def getErrorMessage(self) -> str:
        return str(self.value)

    def getTraceback(self) -> str:
        return "".join(traceback.format_exception(self.type, self.value, self.tb))

    def __repr__(self) -> str:
        return f"<Failure {self.type.__module__}.{self.type.__qualname__}: {self.value}>"

    __str__ = __repr__
