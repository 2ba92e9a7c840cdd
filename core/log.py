"""Logging for plugin authors and .tac files: Twisted's names, on top of the standard ``logging`` module.

Every style Twisted code uses ends up as an ordinary ``logging`` record, so
twistd's destinations, rotation and formats apply to all of them:

* new-style: ``log = Logger(); log.info("got {n} bytes", n=len(data))``, the
  namespace defaulting to the calling module (so a plugin's lines name it);
* legacy: ``log.msg("started", port)``, ``log.err(failure, "while frobbing")``;
* plain ``logging.getLogger(...)``.

Observers go the other way: an :class:`ILogObserver` is any callable taking
an *event* (a dict with Twisted's keys: ``log_format`` and its fields,
``log_level``, ``log_namespace``, ``log_time``, ``log_failure``, ``log_system``,
and the legacy ``message``/``isError``/``system``/``time``). The file
observers :func:`textFileLogObserver`, :func:`jsonFileLogObserver` and
:class:`FileLogObserver` write events to a file, such as a
:class:`~tapster.core.logfile.LogFile`. An observer receives events when

* a .tac sets it as the application's component,
  ``application.setComponent(ILogObserver, observer)``, and twistd runs the
  .tac without ``--logfile``/``--syslog``/``--logger`` (those, given on the
  command line, win);
* ``twistd --logger pkg.mod.factory`` names a factory returning it;
* code adds it: ``addObserver(observer)``, ``globalLogPublisher.addObserver``,
  ``globalLogBeginner.beginLoggingTo([observer])``, ``startLogging(file)``.

What differs from Twisted, on purpose: the bridge is the ``logging`` module
(records → events), so an event's ``log_format`` is the format a
:class:`Logger` was given, but for a line logged with ``logging`` or
``msg`` it is ``"{log_text}"``; there is no buffering of early events and no
redirection of stdout (``startLogging`` only adds an observer): under twistd,
stdout is already where the log goes, or ``/dev/null`` for a daemon.
"""

from __future__ import annotations

import datetime
import enum
import json
import logging
import string
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable

from tapster.core.failure import Failure
from tapster.core.service import _InterfaceMeta, _provides

if TYPE_CHECKING:
    from types import TracebackType

    _ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

__all__ = [
    "ROOT", "getLogger", "msg", "err", "Logger", "LogLevel", "ILogObserver",
    "formatEvent", "formatTime", "formatEventAsClassicLogText", "eventAsText", "eventAsJSON", "eventFromJSON",
    "FileLogObserver", "textFileLogObserver", "jsonFileLogObserver",
    "ObserverHandler", "eventFromRecord", "addObserver", "removeObserver", "startLogging",
    "globalLogPublisher", "globalLogBeginner", "timeFormatRFC3339",
]

#: Name of the logger everything in tapster logs under.
ROOT = "tapster"
#: Twisted's default time format of text log lines: ``2026-12-01T23:56:23+0000``.
timeFormatRFC3339 = "%Y-%m-%dT%H:%M:%S%z"

_legacy = logging.getLogger(ROOT + ".log")

#: Event dict, as observers receive it: Twisted's keys, each value of its own type.
Event = dict[str, Any]


def getLogger(name: str | None = None) -> logging.Logger:
    """A standard logger below ``tapster`` (``getLogger("qotd")`` → ``tapster.qotd``)."""
    if not name:
        return logging.getLogger(ROOT)
    return logging.getLogger(name if name == ROOT or name.startswith(ROOT + ".") else f"{ROOT}.{name}")


# -- levels --------------------------------------------------------------------------


class LogLevel(enum.IntEnum):
    """Twisted's five levels (``LogLevel.info``, ``.name == "info"``), ordered, valued as ``logging``'s."""

    debug = logging.DEBUG
    info = logging.INFO
    warn = logging.WARNING
    error = logging.ERROR
    critical = logging.CRITICAL

    @classmethod
    def levelWithName(cls, name: str) -> LogLevel:
        """``LogLevel.levelWithName("warn")``; ValueError for a name that is not a level."""
        try:
            return cls[name]
        except KeyError:
            raise ValueError(f"no log level named {name!r}: choose debug, info, warn, error or critical") from None

    @classmethod
    def fromLogging(cls, levelno: int) -> LogLevel:
        """The level of a ``logging`` record: the highest of the five at or below ``levelno``."""
        found = cls.debug
        for level in cls:
            if levelno >= level:
                found = level
        return found


# -- observers -----------------------------------------------------------------------


@runtime_checkable
class ILogObserver(Protocol, metaclass=_InterfaceMeta):
    """Receives log events: any callable ``observer(event)``.

    As an application's component it is *transient*: it holds an open file,
    so it is never saved; the .tac that set it sets it again on the next run.
    """

    def __call__(self, event: Event) -> None: ...


# Set after the class body, as core's other interfaces do (see tapster.core.service._providedBy), but
# not entered in the list addComponent consults: every callable would register as a log observer.
ILogObserver._required = ("__call__",)  # type: ignore[attr-defined]  # read by _InterfaceMeta and _provides
ILogObserver.__subclasshook__ = classmethod(_provides)  # type: ignore[assignment]  # replaces typing's hook
ILogObserver.transientComponent = True  # type: ignore[attr-defined]  # read by Componentized.setComponent


class _CallingFormatter(string.Formatter):
    """``str.format`` on an event, plus Twisted's ``{name()}``: the field is called (a method, say)."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:  # Any: string.Formatter's own types
        if field_name.endswith("()"):
            value, key = super().get_field(field_name[:-2], args, kwargs)
            return value(), key
        return super().get_field(field_name, args, kwargs)


_formatter = _CallingFormatter()


def formatEvent(event: Mapping[str, Any]) -> str:
    """The text of an event: its ``log_format`` filled in with its fields ("" without a format).

    An event that cannot be formatted (a missing field, a broken ``__str__``)
    gives a line saying so, with the format, never an exception: logging must
    never take the server down.
    """
    fmt = event.get("log_format")
    if fmt is None:
        return ""
    try:
        return _formatter.vformat(str(fmt), (), dict(event))
    except Exception as e:  # noqa: BLE001 - any failure of any field's formatting
        fields = {k: v for k, v in event.items() if not k.startswith("log_")}
        return f"Unable to format event {fmt!r} with {fields!r}: {type(e).__name__}: {e}"


def formatTime(when: float | None, timeFormat: str | None = timeFormatRFC3339, default: str = "-") -> str:
    """``when`` (a Unix time) in local time as ``timeFormat``; ``default`` without a time or a format."""
    if when is None or timeFormat is None:
        return default
    return datetime.datetime.fromtimestamp(when).astimezone().strftime(timeFormat)


def _system(event: Mapping[str, Any]) -> str:
    system = event.get("log_system")
    if system:
        return str(system)
    level = event.get("log_level")
    return f"{event.get('log_namespace', '-')}#{level.name if isinstance(level, LogLevel) else '-'}"


def eventAsText(event: Mapping[str, Any], includeTraceback: bool = True, includeTimestamp: bool = True,
                includeSystem: bool = True, formatTime: Callable[[float | None], str] = formatTime) -> str:
    """One event as text: ``time [system] message`` and, if it carries a failure, the traceback."""
    text = formatEvent(event)
    failure = event.get("log_failure")
    if includeTraceback and isinstance(failure, Failure):
        text = f"{text}\n{failure.getTraceback().rstrip()}" if text else failure.getTraceback().rstrip()
    parts = []
    if includeTimestamp:
        parts.append(formatTime(event.get("log_time")))
    if includeSystem:
        parts.append(f"[{_system(event)}]")
    parts.append(text)
    return " ".join(parts)


def formatEventAsClassicLogText(event: Mapping[str, Any],
                                formatTime: Callable[[float | None], str] = formatTime) -> str | None:
    """``time [system] text\\n``, continuation lines indented by a tab; None for an event with no text."""
    text = eventAsText(event, includeTimestamp=False, includeSystem=False)
    if not text:
        return None
    text = text.replace("\n", "\n\t")
    return f"{formatTime(event.get('log_time'))} [{_system(event)}] {text}\n"


def _jsonable(value: object) -> object:
    if isinstance(value, LogLevel):
        return value.name
    if isinstance(value, Failure):
        return {"type": f"{value.type.__module__}.{value.type.__qualname__}", "value": str(value.value),
                "traceback": value.getTraceback()}
    return repr(value)


def eventAsJSON(event: Mapping[str, Any]) -> str:
    """One event as one JSON object (no newline): values JSON cannot hold are written as their repr.

    ``log_level`` is written as its name, ``log_failure`` as type, value and
    traceback, and ``log_text`` (the formatted message) is added, so a reader
    needs no format strings.
    """
    data = {k: v.name if isinstance(v, LogLevel) else v for k, v in event.items()}  # an IntEnum is no number here
    data.setdefault("log_text", formatEvent(event))
    data.pop("failure", None)  # the legacy duplicate of log_failure
    return json.dumps(data, default=_jsonable, ensure_ascii=False, sort_keys=True)


def eventFromJSON(text: str) -> Event:
    """The event :func:`eventAsJSON` wrote (``log_level`` a :class:`LogLevel` again)."""
    event: Event = json.loads(text)
    if not isinstance(event, dict):
        raise ValueError("a JSON log event is an object")
    level = event.get("log_level")
    if isinstance(level, str) and level in LogLevel.__members__:
        event["log_level"] = LogLevel[level]
    return event


class FileLogObserver:
    """Write each event to ``outFile`` as ``formatEvent(event)`` returns it (nothing for None or "").

    Both of Twisted's classes of this name in one: ``FileLogObserver(outFile,
    formatEvent)`` (twisted.logger) and the legacy ``FileLogObserver(file)``
    whose ``emit`` is the observer (twisted.python.log, what buildbot's .tac
    sets: ``application.setComponent(ILogObserver, FileLogObserver(logfile).emit)``),
    which writes classic text lines. ``outFile`` may be a text file, a binary
    one or a :class:`~tapster.core.logfile.LogFile`; it is flushed after each event.
    """

    #: The legacy class's time format (None: Twisted's default, RFC 3339).
    timeFormat: str | None = None

    def __init__(self, outFile: IO[Any] | Any, formatEvent: Callable[[Event], str | None] | None = None) -> None:
        self.outFile = outFile
        self._format = formatEvent or (lambda event: formatEventAsClassicLogText(event, self.formatTime))

    def formatTime(self, when: float | None) -> str:
        """The timestamp of a line (the legacy class's hook: override it, or set ``timeFormat``)."""
        return formatTime(when, self.timeFormat or timeFormatRFC3339)

    def __call__(self, event: Event) -> None:
        text = self._format(event)
        if not text:
            return
        try:
            self.outFile.write(text)
        except TypeError:  # a file opened in binary mode
            self.outFile.write(text.encode("utf-8", "backslashreplace"))
        flush = getattr(self.outFile, "flush", None)
        if flush is not None:
            flush()

    emit = __call__

    def start(self) -> None:
        """The legacy class's way to begin receiving events."""
        addObserver(self)

    def stop(self) -> None:
        removeObserver(self)


def textFileLogObserver(outFile: IO[Any] | Any, timeFormat: str | None = timeFormatRFC3339) -> FileLogObserver:
    """An observer writing classic text lines, ``2026-12-01T10:00:00+0000 [system] text``, to ``outFile``."""
    return FileLogObserver(outFile, lambda event: formatEventAsClassicLogText(
        event, lambda when: formatTime(when, timeFormat)))


def jsonFileLogObserver(outFile: IO[Any] | Any, recordSeparator: str = "\x1e") -> FileLogObserver:
    """An observer writing each event as ``recordSeparator`` + :func:`eventAsJSON` + newline (RFC 7464)."""
    return FileLogObserver(outFile, lambda event: f"{recordSeparator}{eventAsJSON(event)}\n")


# -- records → events ------------------------------------------------------------------


def _namespace(record: logging.LogRecord) -> str:
    namespace = getattr(record, "log_namespace", None)
    if isinstance(namespace, str):
        return namespace
    name = record.name
    return name[len(ROOT) + 1:] if name.startswith(ROOT + ".") else name


def eventFromRecord(record: logging.LogRecord) -> Event:
    """The event an observer receives for a ``logging`` record (see the module docstring for its keys)."""
    fields = getattr(record, "log_fields", None)
    event: Event = dict(fields) if isinstance(fields, dict) else {}
    text = record.getMessage()
    fmt = getattr(record, "log_format", None)
    if not isinstance(fmt, str):
        fmt = "{log_text}"
    logger_event = hasattr(record, "log_namespace")  # from a Logger: log_system only if it was given
    system = getattr(record, "log_system", None) if logger_event else getattr(record, "system", None)
    event.update(
        log_format=fmt,
        log_text=text,
        log_level=LogLevel.fromLogging(record.levelno),
        log_namespace=_namespace(record),
        log_logger=record.name,
        log_time=record.created,
        message=(text,),
        isError=int(record.levelno >= logging.ERROR),
        time=record.created,
    )
    source = getattr(record, "log_source", None)
    if source is not None:
        event["log_source"] = source
    if system and system != "-":
        event["log_system"] = system
    event["system"] = getattr(record, "system", None) or "-"  # the legacy key: what twistd's line shows
    if record.exc_info and record.exc_info[1] is not None:
        failure = Failure(record.exc_info[1])
        event["log_failure"] = event["failure"] = failure
    return event


class ObserverHandler(logging.Handler):
    """A ``logging.Handler`` that hands each record, as an event, to an observer ``observer(event)``."""

    def __init__(self, observer: Callable[[Event], object]) -> None:
        super().__init__()
        self.observer = observer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.observer(eventFromRecord(record))
        except Exception:  # noqa: BLE001 - a broken observer must not take the server down
            self.handleError(record)


def addObserver(observer: Callable[[Event], object]) -> None:
    """Send every event logged from now on to ``observer`` too (twisted.python.log.addObserver)."""
    if _handler_of(observer) is None:
        handler = ObserverHandler(observer)
        handler._tapster_added = True  # type: ignore[attr-defined]  # twistd's setup keeps these
        root = logging.getLogger()
        root.addHandler(handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)


def removeObserver(observer: Callable[[Event], object]) -> None:
    """Stop sending events to ``observer`` (nothing happens if it was never added)."""
    handler = _handler_of(observer)
    if handler is not None:
        logging.getLogger().removeHandler(handler)


def _handler_of(observer: Callable[[Event], object]) -> ObserverHandler | None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, ObserverHandler) and handler.observer == observer:
            return handler
    return None


def startLogging(file: IO[Any] | Any, setStdout: bool = True) -> FileLogObserver:
    """Log classic text lines to ``file`` (twisted.python.log.startLogging); stdout is not redirected."""
    observer = FileLogObserver(file)
    addObserver(observer)
    return observer


class _Publisher:
    """``globalLogPublisher``: ``addObserver``/``removeObserver`` for the whole process."""

    addObserver = staticmethod(addObserver)
    removeObserver = staticmethod(removeObserver)

    def __call__(self, event: Event) -> None:
        """Publish an event built by hand (``log_format``, ``log_level``, fields), as a Logger would."""
        level = event.get("log_level", LogLevel.info)
        namespace = str(event.get("log_namespace", ROOT))
        fields = {k: v for k, v in event.items() if not k.startswith("log_")}
        Logger(namespace)._emit(int(level), str(event.get("log_format") or ""), fields)


class _Beginner:
    """``globalLogBeginner.beginLoggingTo(observers)``: add each observer (nothing is buffered before)."""

    def beginLoggingTo(self, observers: Iterable[Callable[[Event], object]], discardBuffer: bool = False,
                       redirectStandardIO: bool = True) -> None:
        for observer in observers:
            addObserver(observer)


globalLogPublisher = _Publisher()
globalLogBeginner = _Beginner()


# -- emitting ------------------------------------------------------------------------


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
    _legacy.log(level, "%s", text, extra={"system": system, "log_fields": kw})


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
        _legacy.error("%s", _why or _stuff, extra={"system": system, "log_fields": kw})
        return
    _legacy.error("%s", _why or "Unhandled error", exc_info=exc_info, extra={"system": system, "log_fields": kw})


class _Braces:
    """Defers ``str.format`` until a handler actually emits the record."""

    __slots__ = ("fmt", "kw")

    def __init__(self, fmt: str, kw: dict[str, object]) -> None:
        self.fmt = fmt
        self.kw = kw

    def __str__(self) -> str:
        return formatEvent({**self.kw, "log_format": self.fmt})


class Logger:
    """Twisted-style logger: ``Logger().info("listening on {port}", port=8007)``.

    The namespace defaults to the module that creates the Logger, and names
    the system on each of twistd's lines (unless ``system=`` is given), as
    Twisted's text observer shows it; ``source`` is the object logging (as a
    class attribute, the Logger logs as the instance: ``log_source``). Lines go to the
    ``logging`` logger ``tapster.<namespace>`` (so to twistd's log, and to
    every observer); with ``observer=``, to that observer alone.
    """

    def __init__(self, namespace: str | None = None, source: object = None,
                 observer: Callable[[Event], object] | None = None) -> None:
        if namespace is None:
            namespace = sys._getframe(1).f_globals.get("__name__", ROOT)
        self.namespace = namespace
        self.source = source
        self.observer = observer
        self._logger = getLogger(namespace)

    def __get__(self, instance: object, owner: type | None = None) -> Logger:
        # As a class attribute, log as the instance (Twisted's descriptor behaviour).
        if instance is None:
            return self
        return Logger(self.namespace, instance, self.observer)

    def _emit(self, level: int, fmt: str, kw: dict[str, object], exc_info: _ExcInfo | None = None) -> None:
        if self.observer is None and not self._logger.isEnabledFor(level):
            return
        explicit = kw.pop("system", None)
        if self.observer is not None:
            self._observe(level, fmt, kw, explicit, exc_info)
            return
        system = self.namespace if explicit is None else explicit  # what twistd's line shows in [brackets]
        extra = {"system": system, "log_namespace": self.namespace, "log_format": fmt, "log_fields": kw,
                 "log_source": self.source}
        if explicit is not None:  # observers see log_system only when it was given, as in Twisted
            extra["log_system"] = explicit
        self._logger.log(level, "%s", _Braces(fmt, kw) if kw else fmt.replace("{{", "{").replace("}}", "}"),
                         exc_info=exc_info, extra=extra)

    def _observe(self, level: int, fmt: str, kw: dict[str, object], system: object,
                 exc_info: _ExcInfo | None) -> None:
        event: Event = dict(kw)
        event.update(log_format=fmt, log_level=LogLevel.fromLogging(level), log_namespace=self.namespace,
                     log_source=self.source, log_time=time.time(), log_logger=self)
        if system is not None:
            event["log_system"] = system
        if exc_info is not None:
            event["log_failure"] = Failure(exc_info[1])
        assert self.observer is not None
        self.observer(event)

    def emit(self, level: LogLevel | int, format: str | None = None, **kw: object) -> None:
        """Log at ``level`` (a :class:`LogLevel`)."""
        self._emit(int(level), format or "", kw)

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

    def failure(self, format: str, failure: Failure | None = None, level: LogLevel | int = LogLevel.critical,
                **kw: object) -> None:
        """Log ``failure`` (default: the exception being handled) with its traceback."""
        if failure is None:
            failure = Failure()
        self._emit(int(level), format, kw, exc_info=(failure.type, failure.value, failure.tb))
