"""twistd's command line: the options an administrator knows from Twisted's twistd.

Parsing only: nothing here imports asyncio, opens a file or changes the
process, so ``twistd --help`` stays as quick as ``mktap --help``. Values are
checked here (octal umask, sizes, user names stay names: they are resolved
by :mod:`tapster.twistd.privileges` before a --chroot hides /etc/passwd).
"""

from __future__ import annotations

import sys

from tapster.core import usage
from tapster.core.terminal import ExitStatus, exit_status_help

TYPE_CHECKING = False  # typing itself stays unimported on the --help path (see tapster.core.usage)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

__all__ = ["ServerOptions", "ExitStatus", "EXIT_MEANINGS", "EXIT_STATUSES", "parse_size", "parse_umask"]


#: The exit statuses twistd uses, documented in ``twistd --help`` and the README.
EXIT_MEANINGS = {
    ExitStatus.OK: "the application ran and stopped cleanly (SIGTERM, SIGINT); --status: it runs;\n"
                   "--stop: it stopped (or was not running)",
    ExitStatus.ERROR: "start-up or shutdown failed (missing or corrupt file, port in use, pidfile held, ...);\n"
                      "--stop: it did not exit in time",
    ExitStatus.USAGE: "bad command line",
    ExitStatus.NOT_RUNNING: "--status: not running",
    ExitStatus.FORCED: "stopped, but --shutdown-timeout expired and the stop was forced",
}
EXIT_STATUSES = exit_status_help(EXIT_MEANINGS)

_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(value: str) -> int:
    """``10M`` → 10485760: bytes, with an optional K, M or G suffix (powers of 1024)."""
    text = value.strip().upper().removesuffix("IB").removesuffix("B") if value.strip() else ""
    unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
    number = text[: len(text) - len(unit)] if unit else text
    try:
        size = int(float(number) * _SIZE_UNITS[unit])  # inf and nan fail here, as OverflowError/ValueError
    except (ValueError, OverflowError):
        raise ValueError("must be a size such as 500K, 10M or 1G") from None
    if size > 2**50:
        raise ValueError("must be at most 1048576G")
    if size < 1024:
        raise ValueError("must be at least 1K")
    return size


parse_size.coerceDoc = "A size: bytes, or with K, M or G (10M)."  # type: ignore[attr-defined]  # a function attribute: the rule --help shows


def parse_umask(value: str) -> int:
    """``027`` → 0o027: an octal file creation mask."""
    try:
        mask = int(value, 8)
    except ValueError:
        raise ValueError("must be an octal mask such as 022 or 0027") from None
    if not 0 <= mask <= 0o777:
        raise ValueError("must be between 000 and 777 (octal)")
    return mask


parse_umask.coerceDoc = "Octal (022, 0027)."  # type: ignore[attr-defined]  # a function attribute: the rule --help shows


def _bounded(kind: Callable[[str], float], accept: Callable[[float], bool], message: str,
             doc: str) -> Callable[[str], float]:
    """A coerce function: ``kind(value)`` (int or float), refused with ``message`` unless ``accept`` holds."""

    def coerce(value: str) -> float:
        number = kind(value)  # ValueError for what is not a number at all
        if not accept(number):
            raise ValueError(message)
        return number

    coerce.coerceDoc = doc  # type: ignore[attr-defined]  # a function attribute: the rule --help shows
    return coerce


_timeout = _bounded(float, lambda n: n > 0, "must be a positive number of seconds", "Seconds (a positive number).")
_seconds = _bounded(float, lambda n: 0 <= n <= 3600, "must be between 0 and 3600 seconds", "Seconds, from 0 to 3600.")
_workers = _bounded(int, lambda n: 1 <= n <= 256, "must be between 1 and 256", "A number of processes, 1 to 256.")
_keep = _bounded(int, lambda n: n >= 1, "must be at least 1 (rotated files are never kept without bound)",
                 "A number, at least 1.")


def _endpoint(value: str) -> str:
    from tapster.core.endpoints import parse

    if value.strip().lower().startswith("ssl:"):
        raise ValueError("the health endpoint is plain HTTP: use tcp, tcp6 or unix")
    parse(value)  # EndpointError (a ValueError) names what is wrong
    return value


_endpoint.coerceDoc = "A server endpoint: tcp:PORT[:interface=ADDR] or unix:PATH."  # type: ignore[attr-defined]  # a function attribute: the rule --help shows


def _choice(*choices: str) -> Callable[[str], str]:
    def coerce(value: str) -> str:
        if value not in choices:
            raise ValueError(f"choose {' or '.join(choices)}")
        return value

    coerce.coerceDoc = f"One of: {', '.join(choices)}."  # type: ignore[attr-defined]  # a function attribute: the rule --help shows
    return coerce


def _id(value: str) -> int | str:
    value = value.strip()
    if not value:
        raise ValueError("must be a name or a number")
    return int(value) if value.isdigit() else value


_id.coerceDoc = "A name or a number."  # type: ignore[attr-defined]  # a function attribute: the rule --help shows

#: The options that say where the application comes from, and the format they force.
SOURCES = {"file": None, "python": "python", "xml": "xml", "source": "source"}


class ServerOptions(usage.Options):
    synopsis = "Usage: twistd [options] (-f FILE | -y FILE.tac | -x FILE | -s FILE | PLUGIN [plugin options])"
    longdesc = (
        "Runs an application as a server process: a file saved by mktap (-f, or -x/-s to force "
        "the XML or source format), a Python .tac file defining `application` (-y), or a plugin "
        "built in memory (twistd qotd --port 8007). As a daemon by default, returning once the "
        "application has started and its ports are bound (or failing with its error); in the "
        "foreground with -n. SIGTERM or Ctrl-C stops its services in reverse order and saves "
        "<appname>-shutdown.<ext> in the run directory (unless -o; never for a plugin run directly), "
        "which twistd -f runs again. SIGUSR1 reopens the log file (for logrotate); SIGHUP (or "
        "twistd --reload) reopens it and reloads the application from its file, keeping every "
        "unchanged service running and the old application serving if the new one fails. "
        "twistd --stop and twistd --status find a daemon through its pidfile.\n\n"
        + EXIT_STATUSES
    )
    optFlags = [
        ["nodaemon", "n", "Run in the foreground, logging to stdout."],
        ["no_save", "o", "Do not save the application's state on shutdown."],
        ["encrypted", "e", "The application file is encrypted: ask for its passphrase."],
        ["debug", "b", "Full tracebacks and debug logging; in the foreground on a terminal, "
                       "pdb post-mortem on an unhandled error."],
        ["euid", None, "Set only the effective user and group ids (keeps the real ids, "
                       "so privileges can be regained: use with care)."],
        ["originalname", None, "Keep the process name instead of showing the application's in ps."],
        ["syslog", None, "Log to syslog (/dev/log), not to a file."],
        ["savestats", None, "With --profile: save the raw statistics (pstats) instead of a text report."],
        ["spew", None, "Log every Python function call (very verbose; for debugging)."],
        ["stop", None, "Stop the daemon running with --pidfile (SIGTERM), waiting for it to exit."],
        ["status", None, "Say whether a daemon runs with --pidfile, and as which pid."],
        ["reload", None, "Reload the daemon running with --pidfile (SIGHUP) and wait for the outcome: "
                         "exit 0 when it reloaded, 1 with the reason when the old application keeps serving."],
    ]
    optParameters = [
        ["file", "f", None, "Read the application from FILE (format recognised by its content)."],
        ["python", "y", None, "Run the application defined as `application` in the Python file FILE (.tac)."],
        ["xml", "x", None, "Read the application from FILE in the XML format (.tax)."],
        ["source", "s", None, "Read the application from FILE in the Python source format (.tas)."],
        ["passphrase-file", None, None, "Read the passphrase of an encrypted file from FILE (first line)."],
        ["rundir", "d", ".", "Change to DIR before anything else: relative paths (application, "
                             "log, pidfile, shutdown file) are in DIR."],
        ["chroot", None, None, "Chroot to DIR after loading the application and before starting it "
                               "(needs root; --rundir is then inside DIR)."],
        ["umask", None, None, "File creation mask (default: the one twistd was started with).", parse_umask],
        ["pidfile", None, None,
         "Write the pid to FILE, locked while running (default: twistd.pid as a daemon, none in the "
         "foreground; '' for none)."],
        ["uid", "u", None, "Run as this user after binding ports (overrides the application's).", _id],
        ["gid", "g", None, "Run as this group (default: the user's primary group; overrides the "
                           "application's).", _id],
        ["logfile", "l", None,
         "Log to FILE ('-' for stdout; default: twistd.log as a daemon, stdout in the foreground)."],
        ["logfile-max-size", None, None, "Rotate the log file when it reaches this size.", parse_size],
        ["logfile-rotate", None, "never", "never, or daily: rotate the log file at midnight (local time).",
         _choice("never", "daily")],
        ["logfile-keep", None, 5, "Rotated log files to keep (FILE.1 newest).", _keep],
        ["log-format", None, "text", "text lines, or json (one JSON object per line, for containers).",
         _choice("text", "json")],
        ["prefix", None, "twistd", "With --syslog: the identifier of the lines."],
        ["logger", None, None, "A logging.Handler, or a factory of a handler or of a Twisted-style "
                               "observer (called with an event dict), given as DOTTED.NAME; "
                               "replaces --logfile and --syslog."],
        ["reactor", "r", None, "The reactor to use: uvloop (default when installed) or asyncio "
                               "(--help-reactors lists them)."],
        ["profile", "p", None, "Run under the profiler and write its report to FILE at exit."],
        ["profiler", None, "cprofile", "The profiler for --profile.", _choice("cprofile", "profile")],
        ["shutdown-timeout", None, 10.0, "Seconds to wait for services to stop before forcing.", _timeout],
        ["health", None, None, "Serve /healthz, /readyz and /metrics (Prometheus) on ENDPOINT "
                               "(tcp:9100:interface=127.0.0.1, unix:/run/app.health).", _endpoint],
        ["workers", None, 1, "Run N worker processes serving the same sockets (stateless servers only; "
                             "the console and datagram servers are refused).", _workers],
        ["drain-time", None, 0.0, "On SIGTERM, fail /readyz and keep accepting for this many seconds "
                                  "before the graceful stop (for load balancers and Kubernetes).", _seconds],
    ]

    def __init__(self) -> None:
        super().__init__()
        self.plugin: str | None = None
        self.plugin_argv: list[str] = []
        self.logfile_given = False

    def opt_help(self) -> NoReturn:
        """Display this help, with the list of installed plugins, and exit."""
        from tapster.core.plugin import plugin_rows
        from tapster.core.terminal import print_table

        sys.stdout.write(str(self))
        rows = plugin_rows()
        if rows:
            print()
            print_table("Plugins (run one directly: twistd [options] PLUGIN [plugin options]):",
                        ("plugin", "description"), rows, sys.stdout)
        sys.stdout.flush()
        raise SystemExit(0)

    opt_h = opt_help

    def opt_help_reactors(self) -> None:
        """Display the reactors that --reactor accepts, and exit."""
        from tapster.core.plugin import reactor_specs
        from tapster.core.reactor import defaultReactorName
        from tapster.core.terminal import print_table

        default = defaultReactorName()
        rows = [(name, spec.description + (" [default]" if name == default else ""))
                for name, spec in sorted(reactor_specs().items())]
        print_table("Reactors:", ("reactor", "description"), rows, sys.stdout)
        sys.stdout.flush()
        raise SystemExit(0)

    def parseArgs(self, *args: str) -> None:
        # Everything after the first non-option belongs to the plugin: twistd qotd --port 8007.
        if args:
            self.plugin, self.plugin_argv = args[0], list(args[1:])

    def postOptions(self) -> None:
        controls = [name for name in ("stop", "status", "reload") if self[name]]
        if len(controls) > 1:
            raise usage.UsageError("give only one of --stop, --status and --reload, not "
                                   + " and ".join(f"--{name}" for name in controls))
        control = bool(controls)
        given = [name for name in SOURCES if self[name]]
        if len(given) > 1:
            raise usage.UsageError(
                "give one application: " + " and ".join(f"--{n}" for n in given) + " were both given"
            )
        if given and self.plugin:
            raise usage.UsageError(f"give either --{given[0]} FILE or a plugin ({self.plugin}), not both")
        if not given and not self.plugin and not control:
            raise usage.UsageError(
                "no application given: use -f FILE, -y FILE.tac or a plugin "
                "(twistd qotd --port 8007; twistd --help lists them)"
            )
        if self.plugin:
            self["no_save"] = True  # a plugin built in memory is rebuilt from its options, not from a save
        # A .tac (-y) is saved at shutdown as <appname>-shutdown.tap, as Twisted's twistd does (seed 002);
        # -o turns it off. What a .tac builds may not pickle: that save failing is a warning, not an error.
        daemon = not self["nodaemon"]
        if self["pidfile"] is None:
            self["pidfile"] = "twistd.pid" if daemon or control else ""
        if control and not self["pidfile"]:
            raise usage.UsageError("--stop, --status and --reload find the daemon through its pidfile: "
                                   "give --pidfile FILE")
        # A .tac's ILogObserver component is used unless the command line names where to log.
        self.logfile_given = self["logfile"] is not None
        if self["logfile"] is None:
            self["logfile"] = "twistd.log" if daemon else "-"
        custom = self["syslog"] or self["logger"]
        if daemon and self["logfile"] == "-" and not custom and not control:
            raise usage.UsageError("a daemon has no stdout: give --logfile FILE, or run in the foreground with -n")
        if self["syslog"] and self["logger"]:
            raise usage.UsageError("give --syslog or --logger, not both")
        rotating = self["logfile-max-size"] is not None or self["logfile-rotate"] != "never"
        if rotating and (self["logfile"] == "-" or custom):
            raise usage.UsageError("log rotation needs a log file: give --logfile FILE")
        if self["workers"] > 1:
            if rotating:
                raise usage.UsageError("with --workers, several processes share the log file: rotate it with "
                                       "logrotate and SIGUSR1, not --logfile-max-size or --logfile-rotate")
            if self["health"]:
                raise usage.UsageError("--health is not available with --workers yet: probe each port instead")
            for name in ("profile", "spew"):
                if self[name]:
                    raise usage.UsageError(f"--{name} profiles one process: run it without --workers")
        if self["savestats"] and not self["profile"]:
            raise usage.UsageError("--savestats saves --profile's statistics: give --profile FILE too")
        if self["passphrase-file"] and self["python"]:
            raise usage.UsageError("a .tac file (-y) is Python code, never encrypted: --passphrase-file does not apply")

    @property
    def source(self) -> tuple[str, str | None] | None:
        """(path, forced format) of the application file, or None for a plugin."""
        for name, kind in SOURCES.items():
            if self[name]:
                return self[name], kind
        return None
