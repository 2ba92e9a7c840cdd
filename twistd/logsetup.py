"""Where twistd's log lines go: the standard ``logging`` module, configured once at start.

Every line carries a timestamp and the *system*: the service or protocol that
logged it (``record.system`` when the caller set one through
:mod:`core.log`, else the logger's name without the ``tapster.`` prefix).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

__all__ = ["setup_logging", "FORMAT", "DATEFMT"]

FORMAT = "%(asctime)s [%(system)s] %(levelname)s: %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%S%z"


class _SystemFilter(logging.Filter):
    """Give every record a ``system`` so the format never fails."""

    def filter(self, record: logging.LogRecord) -> bool:
        system = getattr(record, "system", None)
        if not system or system == "-":
            name = record.name
            record.system = name[len("tapster."):] if name.startswith("tapster.") else name
        return True


def setup_logging(stream: TextIO | None = None, level: int = logging.INFO, rich: bool | None = None,
                  logfile: str | None = None) -> logging.Handler:
    """Send all log records to ``logfile`` (``-``: stdout) or ``stream`` (default stdout).

    Rich formatting on a terminal, plain lines otherwise. Returns the handler
    so the caller can remove or reopen it.
    """
    if logfile and logfile != "-":
        try:
            file_handler: logging.Handler = logging.FileHandler(logfile, encoding="utf-8", delay=False)
        except OSError as e:
            from core.errors import TapsterError

            raise TapsterError(f"cannot open log file {logfile}: {e.strerror} (choose another with --logfile)") from e
        return _install(file_handler, logging.Formatter(FORMAT, DATEFMT), level)
    stream = stream if stream is not None else sys.stdout
    if rich is None:
        rich = bool(getattr(stream, "isatty", lambda: False)())
    if rich:
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(file=stream), show_path=False, rich_tracebacks=False, log_time_format="%H:%M:%S")
        return _install(handler, logging.Formatter("[%(system)s] %(message)s"), level)
    return _install(logging.StreamHandler(stream), logging.Formatter(FORMAT, DATEFMT), level)


def _install(handler: logging.Handler, formatter: logging.Formatter, level: int) -> logging.Handler:
    handler.setFormatter(formatter)
    handler.addFilter(_SystemFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler
