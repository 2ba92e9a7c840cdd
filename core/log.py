"""Logging for plugin authors, on top of the standard ``logging`` module.

Twisted's two styles both work and both end up as ordinary ``logging``
records (so twistd's handlers, rotation and formats apply to all of them):

* legacy: ``log.msg("started", port)``, ``log.err(failure, "while frobbing")``;
* new-style: ``log = Logger(); log.info("got {n} bytes", n=len(data))``,
  with the namespace defaulting to the calling module.

Every record carries ``system`` (which service or protocol logged it) so that
twistd can print it on each line.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from tapster.core.failure import Failure

if TYPE_CHECKING:
    from types import TracebackType

    _ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

__all__ = ["msg", "err", "Logger", "getLogger", "ROOT"]

#: Name of the logger everything in tapster logs under.
ROOT = "tapster"

_legacy = logging.getLogger(ROOT + ".log")


def getLogger(name: str | None = None) -> logging.Logger:
    """A standard logger below ``tapster`` (``getLogger("qotd")`` → ``tapster.qotd``)."""
    if not name:
        return logging.getLogger(ROOT)
    return logging.getLogger(name if name == ROOT or name.startswith(ROOT + ".") else f"{ROOT}.{name}")


def msg(*message: object, **kw: Any) -> None:  # Any: Twisted's event keys, each of its own type
    """Log ``message`` (joined with spaces) at INFO; ``system=`` names who logs, ``isError=1`` logs an error."""
    system = kw.pop("system", "-")
    level = logging.ERROR if kw.pop("isError", False) else logging.INFO
    text = " ".join(str(m) for m in message)
    if kw.get("format"):
        try:
            text = kw["format"] % kw
        except (KeyError, TypeError, ValueError):
            pass
    _legacy.log(level, "%s", text, extra={"system": system})


def err(_stuff: object = None, _why: str | None = None, **kw: object) -> None:
    """Log an error with its traceback: a Failure, an exception, or (default) the one being handled."""
    system = kw.pop("system", "-")
    exc_info: _ExcInfo | None
    if _stuff is None:
        current = sys.exc_info()
        exc_info = None if current[0] is None else current
    elif isinstance(_stuff, Failure):
        exc_info = (_stuff.type, _stuff.value, _stuff.tb)
    elif isinstance(_stuff, BaseException):
        exc_info = (type(_stuff), _stuff, _stuff.__traceback__)
    else:
        _legacy.error("%s", _why or _stuff, extra={"system": system})
        return
    _legacy.error("%s", _why or "Unhandled error", exc_info=exc_info, extra={"system": system})


class _Braces:
    """Defers ``str.format`` until a handler actually emits the record."""

    __slots__ = ("fmt", "kw")

    def __init__(self, fmt: str, kw: dict[str, object]) -> None:
        self.fmt = fmt
        self.kw = kw

    def __str__(self) -> str:
        try:
            return self.fmt.format(**self.kw)
        except (KeyError, IndexError, ValueError, AttributeError):
            return f"{self.fmt} {self.kw!r}"


class Logger:
    """Twisted-style logger: ``Logger().info("listening on {port}", port=8007)``.

    The namespace defaults to the module that creates the Logger; ``source``
    (an object) names the system on each line.
    """

    def __init__(self, namespace: str | None = None, source: object = None) -> None:
        if namespace is None:
            namespace = sys._getframe(1).f_globals.get("__name__", ROOT)
        self.namespace = namespace
        self.source = source
        self._logger = getLogger(namespace)

    def __get__(self, instance: object, owner: type | None = None) -> Logger:
        # As a class attribute, log as the instance (Twisted's descriptor behaviour).
        if instance is None:
            return self
        return Logger(self.namespace, instance)

    def _emit(self, level: int, fmt: str, kw: dict[str, object], exc_info: _ExcInfo | None = None) -> None:
        if not self._logger.isEnabledFor(level):
            return
        system = kw.pop("system", None)
        if system is None:
            src = self.source
            system = src.logPrefix() if hasattr(src, "logPrefix") else (type(src).__name__ if src is not None else "-")
        self._logger.log(level, "%s", _Braces(fmt, kw) if kw else fmt, exc_info=exc_info, extra={"system": system})

    def debug(self, format: str = "", **kw: object) -> None:
        self._emit(logging.DEBUG, format, kw)

    def info(self, format: str = "", **kw: object) -> None:
        self._emit(logging.INFO, format, kw)

    def warn(self, format: str = "", **kw: object) -> None:
        self._emit(logging.WARNING, format, kw)

    warning = warn

    def error(self, format: str = "", **kw: object) -> None:
        self._emit(logging.ERROR, format, kw)

    def critical(self, format: str = "", **kw: object) -> None:
        self._emit(logging.CRITICAL, format, kw)

    def failure(self, format: str, failure: Failure | None = None, **kw: object) -> None:
        """Log ``failure`` (default: the exception being handled) with its traceback."""
        if failure is None:
            failure = Failure()
        self._emit(logging.CRITICAL, format, kw, exc_info=(failure.type, failure.value, failure.tb))
