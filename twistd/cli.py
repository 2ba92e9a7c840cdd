"""``twistd``: load a saved application and run it as a server process.

:func:`main` is the one place where errors become a message and an exit status.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, Sequence

from core import usage
from core.errors import TapsterError

__all__ = ["main", "run"]

PROG = "twistd"


def _fail(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run twistd with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    from twistd.options import ServerOptions
    from twistd.runner import ExitStatus

    argv = list(sys.argv[1:] if argv is None else argv)
    config = ServerOptions()
    try:
        config.parseOptions(argv)
    except usage.UsageError as e:
        _fail(f"{e} (see twistd --help)")
        return ExitStatus.USAGE
    except SystemExit as e:  # --help, --version
        return int(e.code or 0)
    try:
        return _run(config)
    except TapsterError as e:
        if config["debug"]:
            traceback.print_exc()
        _fail(str(e))
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        _fail("interrupted")
        return ExitStatus.ERROR
    except Exception as e:  # a bug, or a plugin's: keep the user informed, traceback on request
        if config["debug"]:
            traceback.print_exc()
            _fail(f"unexpected error: {type(e).__name__}: {e}")
        else:
            _fail(f"unexpected error: {type(e).__name__}: {e} (run with --debug for the traceback)")
        return ExitStatus.ERROR


def _run(config: Any) -> int:
    """Load, then (as a daemon, after forking) set up logging, pidfile, reactor and run."""
    import logging

    from core import persist
    from twistd.daemon import StatusPipe, daemonize

    # Load before forking: a missing or corrupt file is reported straight to the user.
    application = persist.load(config["file"])
    if config["nodaemon"]:
        return _serve(config, application, StatusPipe(None))
    status = daemonize()
    try:
        return _serve(config, application, status)
    except BaseException as e:  # report to the launcher, which prints it
        message = str(e) if isinstance(e, TapsterError) else f"unexpected error: {type(e).__name__}: {e}"
        logging.getLogger("tapster.twistd").error("start-up failed: %s", message, exc_info=config["debug"])
        status.failed(message)
        return 1


def _serve(config: Any, application: Any, status: Any) -> int:
    import logging

    from core import reactor as shared
    from twistd.logsetup import setup_logging
    from twistd.pidfile import NullPidFile, PidFile
    from twistd.runner import Runner

    setup_logging(logfile=config["logfile"], level=logging.DEBUG if config["debug"] else logging.INFO)
    reactor = shared.install(config["reactor"])
    pidfile = PidFile(config["pidfile"]) if config["pidfile"] else NullPidFile()
    runner = Runner(
        application,
        reactor,
        pidfile,
        save=not config["no_save"],
        shutdown_timeout=config["shutdown-timeout"],
        source=config["file"],
        on_started=status.started,
    )
    return runner.run()


def run() -> None:
    """Console-script entry point."""
    from core._console import exit_quietly_on_broken_pipe

    with exit_quietly_on_broken_pipe():
        status = main()
    sys.exit(status)
