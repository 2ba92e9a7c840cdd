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


def setup_logging(stream: TextIO | None = None, level: int = logging.INFO, rich: bool | None = None) -> logging.Handler:
    """Send all log records to ``stream`` (default stdout); rich formatting on a terminal.

    Returns the handler so the caller can remove or reopen it.
    """
    stream = stream if stream is not None else sys.stdout
    if rich is None:
        rich = bool(getattr(stream, "isatty", lambda: False)())
    handler: logging.Handler
    if rich:
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(file=stream), show_path=False, rich_tracebacks=False, log_time_format="%H:%M:%S")
        handler.setFormatter(logging.Formatter("[%(system)s] %(message)s"))
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
    handler.addFilter(_SystemFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler
