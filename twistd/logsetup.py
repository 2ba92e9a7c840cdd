"""Where twistd's log lines go: the standard ``logging`` module, configured once at start.

Every line carries a timestamp and the *system*: the service or protocol that
logged it (``record.system`` when the caller set one through
:mod:`tapster.core.log`, else the logger's name without the ``tapster.`` prefix).

Destinations, one at a time (as Twisted's twistd):

* stdout (foreground default): rich on a terminal, plain lines otherwise;
* a file (a :class:`tapster.core.logfile.LogFile` behind
  :class:`tapster.twistd.logfile.LogFileHandler`: size/daily rotation, bounded
  number of kept files, reopened on SIGUSR1);
* syslog (``--syslog``, ``--prefix`` the identifier);
* ``--logger DOTTED.NAME``: a ``logging.Handler`` (class or instance), or a
  factory returning a handler or a Twisted-style observer (a callable
  taking an event dict, such as ``textFileLogObserver(open(...))``);
* the application's :class:`~tapster.core.log.ILogObserver` component (what a
  .tac sets), when the command line named none of the above: ``--logfile``,
  ``--syslog`` and ``--logger`` given on the command line win.

``--log-format json`` writes one JSON object per line (for containers and
log shippers) wherever the lines go.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from tapster.core.errors import TapsterError
from tapster.core.log import ObserverHandler
from tapster.core.logfile import reopenAll  # at import: a --chroot hides the library later

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["setup_logging", "LogSettings", "JsonFormatter", "ObserverHandler", "FORMAT", "DATEFMT"]

FORMAT = "%(asctime)s [%(system)s] %(levelname)s: %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%S%z"


@dataclass
class LogSettings:
    """What the command line asked for; the defaults log plain text to stdout."""

    logfile: str | None = None  # None or "-": stdout
    level: int = logging.INFO
    max_size: int | None = None
    daily: bool = False
    keep: int = 5
    format: str = "text"  # or "json"
    syslog: bool = False
    prefix: str = "twistd"
    logger: str | None = None
    #: The application's ILogObserver component, used when nothing above names a destination.
    observer: Callable[[dict[str, object]], object] | None = None


class _SystemFilter(logging.Filter):
    """Give every record a ``system`` so the format never fails."""

    def filter(self, record: logging.LogRecord) -> bool:
        system = getattr(record, "system", None)
        if not system or system == "-":
            name = record.name
            record.system = name[len("tapster."):] if name.startswith("tapster.") else name
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601, local with offset), level, system, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        zone = time.strftime("%z", time.localtime(record.created))
        event: dict[str, object] = {
            "time": f"{stamp}.{int(record.msecs):03d}{zone[:3]}:{zone[3:]}",
            "level": record.levelname.lower(),
            "system": getattr(record, "system", record.name),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, ensure_ascii=False, default=str)


def _named_any(name: str) -> object:
    """The object a dotted name refers to: the longest importable module path, then attributes."""
    import importlib

    parts = name.split(".")
    if not all(parts):
        raise TapsterError(f"--logger {name}: not a dotted name such as mypackage.logs.make_handler")

    def attempt(module_name: str) -> ModuleType | None:
        """The module, or None when ``module_name`` itself does not exist (as opposed to failing)."""
        try:
            return importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:
                return None
            raise TapsterError(f"--logger {name}: importing {module_name} failed: {e}") from e
        except Exception as e:
            raise TapsterError(f"--logger {name}: importing {module_name} failed: {type(e).__name__}: {e}") from e

    obj = attempt(parts[0])
    if obj is None:
        raise TapsterError(f"--logger {name}: no module {parts[0]!r} (is it installed?)")
    module_name, i = parts[0], 1
    while i < len(parts):
        deeper = attempt(f"{module_name}.{parts[i]}")
        if deeper is None:
            break
        obj, module_name, i = deeper, f"{module_name}.{parts[i]}", i + 1
    try:
        for attr in parts[i:]:
            obj = getattr(obj, attr)
    except AttributeError:
        raise TapsterError(f"--logger {name}: {module_name} has no {'.'.join(parts[i:])}") from None
    return obj


def custom_handler(name: str) -> logging.Handler:
    """The handler ``--logger name`` asks for (see the module docstring)."""
    obj = _named_any(name)
    if isinstance(obj, logging.Handler):
        return obj
    if not callable(obj):
        raise TapsterError(f"--logger {name}: a {type(obj).__name__} is neither a logging.Handler nor a factory")
    try:
        made = obj()
    except Exception as e:
        raise TapsterError(f"--logger {name}() failed: {type(e).__name__}: {e}") from e
    if isinstance(made, logging.Handler):
        return made
    if callable(made):
        return ObserverHandler(made)
    raise TapsterError(
        f"--logger {name}() returned a {type(made).__name__}: expected a logging.Handler or an observer (a callable)"
    )


def setup_logging(stream: TextIO | None = None, level: int = logging.INFO, rich: bool | None = None,
                  logfile: str | None = None, settings: LogSettings | None = None) -> logging.Handler:
    """Send all log records where ``settings`` say (default: ``logfile``, ``-`` or None for ``stream``/stdout).

    Rich formatting on a terminal (text format, stdout only), plain lines
    otherwise. Returns the handler so the caller can reopen or remove it.
    """
    if settings is None:
        settings = LogSettings(logfile=logfile, level=level)
    json_lines = settings.format == "json"
    plain: logging.Formatter = JsonFormatter() if json_lines else logging.Formatter(FORMAT, DATEFMT)
    if settings.logger:
        handler = custom_handler(settings.logger)
        return _install(handler, handler.formatter or plain, settings.level)
    if settings.observer is not None:
        return _install(ObserverHandler(settings.observer), plain, settings.level)
    if settings.syslog:
        return _install(_syslog_handler(settings.prefix), JsonFormatter() if json_lines else
                        logging.Formatter("[%(system)s] %(levelname)s: %(message)s"), settings.level)
    if settings.logfile and settings.logfile != "-":
        from tapster.twistd.logfile import LogFileHandler

        try:
            file_handler = LogFileHandler(settings.logfile, max_size=settings.max_size, daily=settings.daily,
                                   keep=settings.keep)
        except OSError as e:
            raise TapsterError(
                f"cannot open log file {settings.logfile}: {e.strerror} (choose another with --logfile)"
            ) from e
        return _install(file_handler, plain, settings.level)
    stream = stream if stream is not None else sys.stdout
    if rich is None:
        rich = not json_lines and bool(getattr(stream, "isatty", lambda: False)())
    if rich:
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(file=stream), show_path=False, rich_tracebacks=False,
                              log_time_format="%H:%M:%S")
        return _install(handler, logging.Formatter("[%(system)s] %(message)s"), settings.level)
    return _install(logging.StreamHandler(stream), plain, settings.level)


def _syslog_handler(prefix: str, address: str = "/dev/log") -> logging.Handler:
    """A handler to the local syslog daemon; a clear error now if there is none.

    ``SysLogHandler`` itself swallows a failed connection at creation and
    then complains on every line, so reachability is checked here first.
    """
    import socket
    from logging.handlers import SysLogHandler

    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.connect(address)
    except OSError as e:
        raise TapsterError(
            f"cannot reach syslog at {address}: {e.strerror or e} (is a syslog daemon running? "
            "or log to a file with --logfile)"
        ) from e
    finally:
        probe.close()
    handler = SysLogHandler(address=address, facility=SysLogHandler.LOG_DAEMON)
    handler.ident = f"{prefix}[{os.getpid()}]: "
    return handler


def _install(handler: logging.Handler, formatter: logging.Formatter, level: int) -> logging.Handler:
    handler.setFormatter(formatter)
    handler.addFilter(_SystemFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if not getattr(old, "_tapster_added", False):  # observers code added (log.addObserver) stay
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler


def reopen_logs(handler: logging.Handler | None = None) -> bool:
    """What SIGUSR1 (and SIGHUP) does: reopen every log file of the process; False when there is none.

    That is twistd's own ``--logfile`` and every other
    :class:`tapster.core.logfile.LogFile` open in the process: a .tac's
    observer's, a plugin's access log (:func:`tapster.core.logfile.reopenAll`).
    """
    return reopenAll() > 0
