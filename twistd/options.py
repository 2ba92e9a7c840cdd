"""twistd's command line: the options an administrator knows from Twisted's twistd."""

from __future__ import annotations

from core import usage

__all__ = ["ServerOptions", "EXIT_STATUSES"]

#: Exit statuses, documented in ``twistd --help`` and the README.
EXIT_STATUSES = """\
Exit status:
  0  the application ran and stopped cleanly (SIGTERM, SIGINT)
  1  start-up or shutdown failed (missing or corrupt file, port in use, pidfile held, ...)
  2  bad command line
  4  stopped, but --shutdown-timeout expired and the stop was forced"""


def _timeout(value: str) -> float:
    seconds = float(value)
    if seconds <= 0:
        raise ValueError("must be a positive number of seconds")
    return seconds


_timeout.coerceDoc = "Seconds (a positive number)."  # type: ignore[attr-defined]


class ServerOptions(usage.Options):
    synopsis = "Usage: twistd [options] -f FILE"
    longdesc = (
        "Runs a saved application (built with mktap) as a server process: as a daemon by "
        "default (returning once the application has started, or failing with its error), "
        "in the foreground with -n. SIGTERM or Ctrl-C stops its services in reverse order "
        "and saves <appname>-shutdown.<ext> (unless --no_save), which twistd -f runs again.\n\n"
        + EXIT_STATUSES
    )
    optFlags = [
        ["nodaemon", "n", "Run in the foreground, logging to stdout."],
        ["no_save", "o", "Do not save the application's state on shutdown."],
        ["debug", "b", "Show full tracebacks of errors."],
    ]
    optParameters = [
        ["file", "f", None, "Read the application from FILE (format recognised by its content)."],
        ["pidfile", None, None,
         "Write the pid to FILE, locked while running (default: twistd.pid as a daemon, none in the foreground; '' for none)."],
        ["logfile", "l", None, "Log to FILE ('-' for stdout; default: twistd.log as a daemon, stdout in the foreground)."],
        ["reactor", "r", None, "The reactor to use: uvloop (default when installed) or asyncio."],
        ["shutdown-timeout", None, 10.0, "Seconds to wait for services to stop before forcing.", _timeout],
    ]

    def postOptions(self) -> None:
        if not self["file"]:
            raise usage.UsageError("no application given: use -f FILE (build one with: mktap qotd --port 8007)")
        daemon = not self["nodaemon"]
        if self["pidfile"] is None:
            self["pidfile"] = "twistd.pid" if daemon else ""
        if self["logfile"] is None:
            self["logfile"] = "twistd.log" if daemon else "-"
        if daemon and self["logfile"] == "-":
            raise usage.UsageError("a daemon has no stdout: give --logfile FILE, or run in the foreground with -n")
