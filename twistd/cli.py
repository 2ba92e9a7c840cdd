"""``twistd``: run an application as a well-behaved server process.

:func:`main` is the one place where errors become a message and an exit
status. The start-up order is deliberate (each step's reason in its module):

1. parse the command line (``--stop``/``--status`` end here);
2. enter ``--rundir``, apply ``--umask``;
3. load the application (file, .tac or plugin) and resolve user and group
   names: every mistake so far is reported straight to the terminal;
4. fork into a daemon (the launcher waits for the verdict), before any
   event loop exists;
5. set the process title, ``--chroot``, open the log, install the reactor,
   lock the pidfile, bind, shed privileges, start, run
   (:class:`tapster.twistd.runner.Runner`), under ``--profile``/``--spew`` if asked.
"""

from __future__ import annotations

import sys

from tapster.core import usage
from tapster.core.errors import TapsterError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing and traceback cost ~6 ms on the --help path
    import logging
    from collections.abc import Callable, Sequence
    from typing import TypedDict

    from tapster.core.service import Application, IService
    from tapster.twistd.daemon import StatusPipe
    from tapster.twistd.logsetup import LogSettings
    from tapster.twistd.options import ServerOptions
    from tapster.twistd.privileges import Ids
    from tapster.twistd.sdnotify import Notifier

    #: What _prepare found out before forking.
    class _Prepared(TypedDict):
        ids: Ids
        reactor: str

__all__ = ["main", "run"]

PROG = "twistd"


def _fail(message: str) -> None:
    from tapster.core.terminal import one_line

    print(f"{PROG}: {one_line(message)}", file=sys.stderr)


def _print_traceback() -> None:
    import traceback

    traceback.print_exc()


def _what(config: ServerOptions) -> str:
    """What was being run, for a message about an error nobody foresaw: the file, or the plugin."""
    if config.plugin:
        return f"plugin {config.plugin}"
    source = config.source
    return source[0] if source is not None else "twistd"


def main(argv: Sequence[str] | None = None) -> int:
    """Run twistd with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    from tapster.twistd.options import ExitStatus, ServerOptions

    argv = list(sys.argv[1:] if argv is None else argv)
    config = ServerOptions()
    try:
        config.parseOptions(argv)
    except usage.UsageError as e:
        _fail(f"{e} (see twistd --help)")
        return ExitStatus.USAGE
    except SystemExit as e:  # --help, --version, --help-reactors
        return int(e.code or 0)
    from tapster.twistd.diagnostics import post_mortem, post_mortem_available

    debugger = post_mortem_available(config["nodaemon"], config["debug"])
    try:
        return _run(config)
    except SystemExit as e:  # a plugin's --help
        return int(e.code or 0)
    except usage.UsageError as e:  # a plugin's options
        _fail(str(e))
        return ExitStatus.USAGE
    except TapsterError as e:  # an error twistd explains (no debugger: the message says it all)
        if config["debug"]:
            _print_traceback()
        _fail(str(e))
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        _fail("interrupted")
        return ExitStatus.ERROR
    except Exception as e:  # a bug, or a plugin's: keep the user informed, traceback on request
        if config["debug"]:
            _print_traceback()
            if debugger:
                post_mortem(e.__traceback__)
            _fail(f"{_what(config)}: unexpected error: {type(e).__name__}: {e}")
        else:
            _fail(f"{_what(config)}: unexpected error: {type(e).__name__}: {e} (run with --debug for the traceback)")
        return ExitStatus.ERROR


def _run(config: ServerOptions) -> int:
    """Control commands, or load then (as a daemon, after forking) serve."""
    import logging
    import os

    from tapster.twistd import environment
    from tapster.twistd.daemon import StatusPipe, daemonize

    if config["stop"] or config["status"] or config["reload"]:
        from tapster.twistd import control

        path = environment.pidfile_path(config["pidfile"], config["rundir"], config["chroot"])
        if config["status"]:
            return control.status(path)
        if config["reload"]:
            return control.reload(path, timeout=60.0)
        return control.stop(path, timeout=config["shutdown-timeout"] + 5.0)

    # Before the application loads: its code and its children must not see (or use) systemd's socket.
    from tapster.twistd.sdnotify import from_environment

    notifier = from_environment()
    from tapster.core.systemd import readEnvironment

    readEnvironment()  # socket activation: the descriptors systemd passed, for systemd:/fd: endpoints
    rundir = environment.enter_rundir(config["rundir"], config["chroot"])
    if config["umask"] is not None:
        os.umask(config["umask"])
    _importable_beside(config, rundir)

    application, source = _load(config)
    prepared = _prepare(config, application)
    if config["nodaemon"]:
        return _serve(config, application, source, prepared, StatusPipe(None), notifier)
    status = daemonize()
    try:
        return _serve(config, application, source, prepared, status, notifier)
    except BaseException as e:  # report to the launcher, which prints it
        message = (str(e) if isinstance(e, TapsterError)
                   else f"{_what(config)}: unexpected error: {type(e).__name__}: {e}")
        logging.getLogger("tapster.twistd").error("start-up failed: %s", message, exc_info=config["debug"])
        status.failed(message)
        return 1


def _importable_beside(config: ServerOptions, rundir: str) -> None:
    """Let the application import modules from the run directory, as Twisted does, but never shadow.

    For a ``.tac`` (and a pickle or source file, which name classes by module)
    the run directory and the .tac's own directory are *appended* to
    ``sys.path``: a module beside the file is found, but a folder there called
    ``tapster``, ``plugins`` or like any installed plugin's package never
    hides the installed one. A safe format (XML, YAML) gets neither: it names
    only installed, declared classes, so nothing beside it may be imported.
    """
    import os

    from tapster.core import persist

    if config.plugin:
        return
    source = config.source
    assert source is not None  # postOptions insists on a file or a plugin
    path, kind = source
    if kind != "python" and not persist.runs_code(path, kind):
        return
    places = [rundir]
    if kind == "python":
        places.append(os.path.dirname(os.path.abspath(path)))
    for place in places:
        if place not in sys.path:
            sys.path.append(place)


def _load(config: ServerOptions) -> tuple[IService, str]:
    from tapster.twistd.loading import load_application

    return load_application(config)


def _prepare(config: ServerOptions, application: IService) -> _Prepared:
    """What can still fail cheaply before forking: user and group names, the reactor's name."""
    from tapster.core.reactor import availableReactors, defaultReactorName
    from tapster.twistd.privileges import resolve_ids

    uid = config["uid"] if config["uid"] is not None else getattr(application, "uid", None)
    gid = config["gid"] if config["gid"] is not None else getattr(application, "gid", None)
    ids = resolve_ids(uid, gid)
    reactor = config["reactor"] or defaultReactorName()
    specs = availableReactors()
    if reactor not in specs:
        raise TapsterError(f"unknown reactor {reactor!r}: choose one of {', '.join(sorted(specs))} (--help-reactors)")
    if not config["no_save"]:
        from tapster.core import persist

        persist.format_for(getattr(application, "persistStyle", None) or persist.DEFAULT_FORMAT)
    return {"ids": ids, "reactor": reactor}


def _log_settings(config: ServerOptions, application: IService | None = None) -> LogSettings:
    """Where to log: the command line's choice; without one, the application's ILogObserver, if it has one."""
    import logging

    from tapster.twistd.logsetup import LogSettings

    observer = None
    named = config.logfile_given or config["syslog"] or config["logger"]
    get_component = getattr(application, "getComponent", None)
    if not named and get_component is not None:
        from tapster.core.log import ILogObserver

        observer = get_component(ILogObserver, None)
    return LogSettings(
        observer=observer,
        logfile=config["logfile"],
        level=logging.DEBUG if config["debug"] else logging.INFO,
        max_size=config["logfile-max-size"],
        daily=config["logfile-rotate"] == "daily",
        keep=config["logfile-keep"],
        format=config["log-format"],
        syslog=config["syslog"],
        prefix=config["prefix"],
        logger=config["logger"],
    )


def _serve(config: ServerOptions, application: IService, source: str, prepared: _Prepared, status: StatusPipe,
           notifier: Notifier | None = None) -> int:
    import functools

    from tapster.core import reactor as shared
    from tapster.twistd import environment
    from tapster.twistd.diagnostics import post_mortem, post_mortem_available
    from tapster.twistd.logsetup import reopen_logs, setup_logging
    from tapster.twistd.pidfile import NullPidFile, PidFile
    from tapster.twistd.runner import Runner

    title = getattr(application, "processName", None) or application.name
    if not config["originalname"] and title is not None:  # a nameless root (a .tac's) keeps the name
        environment.set_process_title(title)
    settings = _log_settings(config, application)
    reload_status = _reload_status_file(config)  # before a --chroot hides the library
    if config["chroot"]:
        extra: tuple[str, ...] = (
            ("rich.console", "rich.logging") if settings.logfile == "-" and sys.stdout.isatty() else ()
        )
        if config["profile"]:
            extra += ("cProfile", "profile", "pstats")
        environment.prepare_for_chroot(prepared["reactor"], extra)
        if not config["no_save"]:
            _rehearse_save(application)
        environment.enter_chroot(config["chroot"], config["rundir"])
    handler = setup_logging(settings=settings)
    if config["workers"] > 1:
        return _serve_workers(config, application, source, prepared, status, notifier, handler, reload_status)
    reactor = shared.install(prepared["reactor"])
    pidfile = PidFile(config["pidfile"]) if config["pidfile"] else NullPidFile()
    debugger = post_mortem_available(config["nodaemon"], config["debug"])
    runner = Runner(
        application,
        reactor,
        pidfile,
        save=not config["no_save"],
        save_failure_is_error=not config["python"],
        shutdown_timeout=config["shutdown-timeout"],
        source=source,
        on_started=status.started,
        ids=prepared["ids"],
        euid=config["euid"],
        reopen_logs=functools.partial(reopen_logs, handler),
        post_mortem=post_mortem if debugger else None,
        notifier=notifier,
        reload=_reload_source(config, application),
        reload_status=reload_status,
        health=config["health"],
        drain_time=config["drain-time"],
    )
    run = runner.run
    if config["profile"]:
        from tapster.twistd.diagnostics import run_profiled

        run = functools.partial(run_profiled, runner.run, config["profile"], config["profiler"], config["savestats"])
    if not config["spew"]:
        return run()
    from tapster.twistd.diagnostics import start_spew, stop_spew

    start_spew()
    try:
        return run()
    finally:
        stop_spew()


def _serve_workers(config: ServerOptions, application: IService, source: str, prepared: _Prepared,
                   status: StatusPipe, notifier: Notifier | None, handler: logging.Handler,
                   reload_status: str | None) -> int:
    """``--workers N``: bind once here, fork N workers that adopt the sockets, supervise (twistd.workers)."""
    import functools
    import logging
    import os

    from tapster.core import reactor as shared
    from tapster.twistd import environment
    from tapster.twistd.logsetup import reopen_logs
    from tapster.twistd.pidfile import NullPidFile, PidFile
    from tapster.twistd.runner import Runner, save_shutdown, write_reload_status
    from tapster.twistd.workers import Supervisor, check_workers_make_sense, worker_log_filter

    check_workers_make_sense(application)
    count = config["workers"]
    load_again = _reload_source(config, application)
    title = getattr(application, "processName", None) or application.name

    def serve(number: int, report: Callable[[], None]) -> int:
        status.forget()  # the supervisor tells the launcher; this copy would keep it waiting
        handler.addFilter(worker_log_filter(number))
        if not config["originalname"] and title is not None:
            environment.set_process_title(f"{title} worker {number}")
        runner = Runner(
            application, shared.install(prepared["reactor"]), NullPidFile(), save=False,
            shutdown_timeout=config["shutdown-timeout"], source=source, on_started=report, ids=prepared["ids"],
            euid=config["euid"], reopen_logs=functools.partial(reopen_logs, handler), reload=load_again,
            drain_time=config["drain-time"], on_reloaded=report,
        )
        return runner.run()

    kept = [application]
    status_file = reload_status
    reloads = [0]

    def reload_copy() -> None:
        """The supervisor's copy (what the shutdown file saves) is loaded first: a file that fails stops here."""
        from tapster.twistd.reload import ReloadError
        from tapster.twistd.reload import load_again as checked_load

        reloads[0] += 1
        try:
            kept[0] = checked_load(load_again, source, "the workers keep serving the running application")
        except ReloadError as e:
            if status_file:
                write_reload_status(status_file, reloads[0], f"error {e}")
            raise
        if status_file:
            write_reload_status(status_file, reloads[0], f"ok reloaded {source}: {count} workers reload one at "
                                "a time (each logs what it kept and replaced)")

    def started() -> None:
        if status_file:
            write_reload_status(status_file, 0, "ready")
        status.started()
        if notifier is not None:
            notifier.ready(f"serving {application.name!r} with {count} workers")

    def save() -> int:
        if config["no_save"]:
            return 0
        return save_shutdown(kept[0], not config["python"])

    pidfile = PidFile(config["pidfile"]) if config["pidfile"] else NullPidFile()
    with pidfile:
        bound = shared.prebindListeningPorts(application)
        logging.getLogger("tapster.twistd").info(
            "%s: %d workers sharing %s", application.name, count, ", ".join(bound) or "no stream ports")
        supervisor = Supervisor(count, serve, config["shutdown-timeout"], on_started=started, save=save,
                                reload=reload_copy)
        try:
            return supervisor.run()
        finally:
            if status_file and os.path.exists(status_file):
                os.unlink(status_file)


def _reload_status_file(config: ServerOptions) -> str | None:
    """Where the daemon tells ``twistd --reload`` how a reload went: beside the pidfile (none without one)."""
    from tapster.twistd.control import reload_status_path

    return reload_status_path(config["pidfile"]) if config["pidfile"] else None


def _reload_source(config: ServerOptions, application: IService) -> Callable[[], IService]:
    """How SIGHUP loads the application again: the same file, format and passphrase (kept in memory), or plugin."""
    from tapster.core import persist
    from tapster.twistd import loading

    if config.plugin:
        plugin, argv = config.plugin, list(config.plugin_argv)
        return lambda: loading.build_plugin(plugin, argv)
    source = config.source
    assert source is not None  # postOptions insists on a file or a plugin
    path, kind = source
    if kind == "python":
        return lambda: loading.load_tac(path)
    passphrase = getattr(application, persist.PASSPHRASE_ATTRIBUTE, None)
    return lambda: persist.load(path, kind=kind, passphrase=passphrase)


def _rehearse_save(application: IService) -> None:
    """Serialize once in memory before a chroot, so that the shutdown save finds every module it imports."""
    import logging
    from typing import cast

    from tapster.core import persist

    try:
        # What twistd saves is an Application (a .tac and a plugin run directly imply --no_save).
        persist.dumps(cast("Application", application),
                      getattr(application, "persistStyle", None) or persist.DEFAULT_FORMAT,
                      getattr(application, persist.PASSPHRASE_ATTRIBUTE, None))
    except Exception as e:  # noqa: BLE001 - the real save at shutdown reports it
        logging.getLogger("tapster.twistd").debug("rehearsing the shutdown save failed: %s", e)


def run() -> None:
    """Console-script entry point."""
    from tapster.core.terminal import exit_quietly_on_broken_pipe

    with exit_quietly_on_broken_pipe():
        status = main()
    sys.exit(status)
