"""Running a loaded application: the start-up order, the signals, the shutdown save.

The runner is assembled from parts (application, reactor, pidfile) so each
part can be tested alone. The order is deliberate:

1. lock the pidfile (a second instance is refused before it touches a port);
2. ``privilegedStartService()``: bind the ports (below 1024 needs root);
   then switch to the user and group (``-u``/``-g``, else the application's);
3. ``startService()``: everything else; failures here stop the start;
4. run the reactor. SIGTERM or SIGINT → ``reactor.stop()`` → 'before shutdown':
   ``stopService()`` awaited up to the shutdown timeout (servers stop
   accepting, then drain the connections they accepted) → the reactor drains
   the connections still open (clients, ports opened outside services) in
   what is left of the same timeout, aborting the rest → 'after shutdown':
   save ``<appname>-shutdown.<ext>``; a second SIGINT exits at once. A stop
   that had to abort anything exits with FORCED.
   SIGUSR1 reopens the log file (``reopen_logs``); SIGHUP reopens it and
   reloads the application (:mod:`tapster.twistd.reload`).

Signal handlers only record or schedule: the loop does the work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import tapster.core
from tapster.core.errors import TapsterError
from tapster.core.terminal import ExitStatus
from tapster.twistd.health import HealthFactory, HealthState
from tapster.twistd.privileges import Ids, resolve_ids, switch_ids
from tapster.twistd.reload import Reloader, ReloadError  # at import: a --chroot hides the library later

if TYPE_CHECKING:
    from types import TracebackType

    from tapster.core.reactor import AsyncioReactor
    from tapster.core.service import Application, IService
    from tapster.twistd.pidfile import NullPidFile, PidFile
    from tapster.twistd.sdnotify import Notifier

__all__ = ["Runner", "ExitStatus", "save_shutdown", "write_reload_status"]

_log = logging.getLogger("tapster.twistd")


def save_shutdown(application: IService, failure_is_error: bool = True) -> int:
    """Write ``<appname>-shutdown.<ext>``; ERROR when that fails and ``failure_is_error`` (else a warning)."""
    save = getattr(application, "save", None)  # only an Application is saved (a plugin run directly is not)
    if save is None:
        _log.warning("not saving on shutdown: the application is a %s, which has no save()",
                     type(application).__name__)
        return ExitStatus.OK
    try:
        path = cast("Application", application).save("shutdown")
    except TapsterError as e:
        if failure_is_error:
            _log.error("could not save the shutdown file: %s", e)
            return ExitStatus.ERROR
        _log.warning("could not save the shutdown file: %s (twistd -o turns the save off)", e)
        return ExitStatus.OK
    _log.info("saved %s", path)
    return ExitStatus.OK


def write_reload_status(path: str, number: int, text: str) -> None:
    """``<number> <text>`` in the reload status file, atomically: what ``twistd --reload`` waits for."""
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, temp = tempfile.mkstemp(dir=directory, prefix=".reload-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(f"{number} {text}\n")
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError as e:
        _log.warning("could not write the reload status %s: %s", path, e.strerror)


class Runner:
    """Starts ``application`` on ``reactor`` and runs until a stop signal."""

    def __init__(
        self,
        application: IService,
        reactor: AsyncioReactor,
        pidfile: PidFile | NullPidFile,
        save: bool = True,
        shutdown_timeout: float = 10.0,
        source: str = "",
        on_started: Callable[[], object] | None = None,
        ids: Ids | None = None,
        euid: bool = False,
        reopen_logs: Callable[[], object] | None = None,
        post_mortem: Callable[[TracebackType | None], None] | None = None,
        save_failure_is_error: bool = True,
        notifier: Notifier | None = None,
        reload: Callable[[], IService] | None = None,
        reload_status: str | None = None,
        health: str | None = None,
        drain_time: float = 0.0,
        on_reloaded: Callable[[], object] | None = None,
    ) -> None:
        self.application = application
        #: A saved file's shutdown save must work (exit 1 if not); a .tac's is a convenience (a warning).
        self.save_failure_is_error = save_failure_is_error
        self.reactor = reactor
        self.pidfile = pidfile
        self.save = save
        self.shutdown_timeout = shutdown_timeout
        self.source = source
        self.on_started = on_started
        self.ids = ids
        self.euid = euid
        self.reopen_logs = reopen_logs
        self.post_mortem = post_mortem
        self.status = ExitStatus.OK
        #: systemd's notification socket (twistd.sdnotify), when running under a Type=notify unit.
        self.notifier = notifier
        self._last_status = ""
        from tapster.core.reactor import StopSignals

        extra: dict[int, Callable[[], None]] = (
            {signal.SIGUSR1: self._on_reopen_signal} if reopen_logs is not None else {}
        )
        #: How to load the application again (SIGHUP), and where to tell ``twistd --reload`` how it went.
        self.reload = reload
        self.reload_status = reload_status
        self._reloader: Reloader | None = None
        #: ``--health ENDPOINT``: twistd's own probe server (twistd.health), and ``--drain-time`` seconds.
        self.health = health
        self.drain_time = drain_time
        #: Called after every reload, whatever its outcome (a worker tells its supervisor it is done).
        self.on_reloaded = on_reloaded
        self.health_state = HealthState(reactor, application.name or "application")
        self._stop_requested = False
        self._reloads = 0
        if reload is not None:
            extra[signal.SIGHUP] = self._on_reload_signal
        self.signals = StopSignals(self._on_stop, self._on_force, extra)

    def run(self) -> int:
        """Start, serve until stopped, shut down; returns the exit status.

        Signals follow tapster's one policy (:class:`tapster.core.reactor.StopSignals`),
        held from here on, so that one sent while the services start is acted on
        as soon as the loop runs.
        """
        self.signals.hold()
        try:
            return self._run(self.application)
        finally:
            self.signals.detach()
            if self.reload_status:
                try:
                    os.unlink(self.reload_status)
                except OSError:
                    pass

    def _run(self, app: IService) -> int:
        with self.pidfile:
            _log.info(
                "tapster %s (Python %s) starting %r from %s on reactor %s, pid %d",
                tapster.core.__version__, sys.version.split()[0], app.name, self.source or "memory",
                self.reactor.name, os.getpid(),
            )
            self.reactor.loop.set_exception_handler(self._loop_exception)
            self._prepare_reload(app)  # the file as loaded, before anything runs: what a reload compares with
            probes = None
            try:
                app.privilegedStartService()
                if self.health:  # bound with the application's ports, before privileges are dropped
                    from tapster.core.endpoints import service as endpoint_service

                    probes = endpoint_service(self.health, HealthFactory(self.health_state))
                    probes.privilegedStartService()
                ids = self.ids if self.ids is not None else resolve_ids(getattr(app, "uid", None),
                                                                         getattr(app, "gid", None))
                switch_ids(ids, self.euid)
                app.startService()
                if probes is not None:
                    probes.startService()
            except BaseException:
                self._stop_after_failed_start()
                if probes is not None:
                    probes.stopService()
                raise
            self.reactor.addSystemEventTrigger("before", "shutdown", self._stop_services)
            self.reactor.addSystemEventTrigger("after", "shutdown", self._save_on_shutdown)
            self.reactor.callWhenRunning(self.signals.attach, self.reactor.loop)
            _log.info("%s started", app.name)
            self.reactor.callWhenRunning(self._announce, "tapster_twistd_started")
            if self.on_started is not None:
                self.reactor.callWhenRunning(self.on_started)
            self.reactor.callWhenRunning(self._now_ready)
            if self.notifier is not None:
                self.reactor.callWhenRunning(self._notify_ready)
            self.reactor.shutdownTimeout = self.shutdown_timeout  # one budget for services and connections
            self.reactor.run(installSignalHandlers=False)
        if self.reactor.forcedDisconnects and self.status == ExitStatus.OK:
            self.status = ExitStatus.FORCED  # the drain ran out of time and aborted connections
        _log.info("%s stopped (exit status %d)", app.name, self.status)
        return self.status

    def _stop_after_failed_start(self) -> None:
        """Undo a partial start so that ports bound so far are closed before we exit."""
        try:
            result = self.application.stopService()
            if asyncio.iscoroutine(result):
                result.close()
        except Exception:  # noqa: BLE001 - we are already reporting the start failure
            _log.debug("error while undoing a failed start", exc_info=True)

    # -- signals -------------------------------------------------------------

    def _on_reopen_signal(self) -> None:
        reopen = self.reopen_logs
        if reopen is None:  # never: the handler is registered only with reopen_logs
            return
        try:
            reopened = reopen()
        except Exception:  # noqa: BLE001 - a failed reopen must not stop the server
            _log.exception("could not reopen the log file")
            return
        if reopened is False:
            _log.info("received SIGUSR1: not logging to a file, nothing to reopen")
        else:
            _log.info("received SIGUSR1, reopened the log file")

    def _prepare_reload(self, app: IService) -> None:
        if self.reload is None:
            return
        from tapster.core.service import MultiService

        if isinstance(app, MultiService):
            self._reloader = Reloader(app, self.reload, self.source or app.name or "the application")
        self._write_reload_status("ready")

    def _on_reload_signal(self) -> None:
        """SIGHUP: reopen the logs, then reload the application (twistd.reload); it never stops the server."""
        _log.info("received SIGHUP, reloading %s", self.source or "the application")
        if self.reopen_logs is not None:
            try:
                self.reopen_logs()
            except Exception:  # noqa: BLE001 - a failed reopen must not stop the reload
                _log.exception("could not reopen the log file")
        if self.notifier is not None:
            self.notifier.reloading()
        self._reloads += 1
        try:
            if self._reloader is None:
                raise ReloadError(f"cannot reload {self.source}: its application is a "
                                  f"{type(self.application).__name__}, not a collection of services")
            result = self._reloader.reload()
        except ReloadError as e:
            _log.error("%s", e)
            self.health_state.reloads["error"] += 1
            self._write_reload_status(f"error {e}")
        except Exception as e:  # a bug: say so, keep serving
            _log.exception("reload failed unexpectedly; still serving the running application")
            self.health_state.reloads["error"] += 1
            self._write_reload_status(f"error reload failed unexpectedly: {type(e).__name__}: {e}")
        else:
            for note in result.notes:
                _log.warning("reload: %s", note)
            _log.info("reloaded %s: %s", self.source, result.summary())
            self.health_state.reloads["ok"] += 1
            self._write_reload_status(f"ok reloaded {self.source}: {result.summary()}")
        if self.notifier is not None:
            self._last_status = self.describe_status()
            self.notifier.ready(self._last_status)
        if self.on_reloaded is not None:
            self.on_reloaded()

    def _write_reload_status(self, text: str) -> None:
        if self.reload_status:
            write_reload_status(self.reload_status, self._reloads, text)

    def _now_ready(self) -> None:
        if self._stop_requested:
            return
        self.health_state.phase = "ready"
        self.health_state.start_lag_ticks()

    def _on_stop(self, name: str) -> None:
        """The first SIGTERM/SIGINT: /readyz fails at once; after ``--drain-time`` the graceful stop begins."""
        if self._stop_requested:
            return
        self._stop_requested = True
        self.health_state.phase = "stopping"
        if self.drain_time > 0:
            _log.info("draining for %gs (--drain-time): /readyz answers 503, the ports still accept",
                      self.drain_time)
            if self.notifier is not None:
                self.notifier.stopping(f"stopping {self.application.name!r} in {self.drain_time:g}s (--drain-time)")
            self.reactor.callLater(self.drain_time, self.reactor.stop)
            return
        self.reactor.stop()

    def _on_force(self, name: str) -> None:
        self.pidfile.release()
        os._exit(ExitStatus.FORCED)

    # -- shutdown ------------------------------------------------------------

    def _announce(self, hook: str) -> None:
        """Call a twistd lifecycle hook (tapster.core.hookspecs); a failing hook is logged, never fatal."""
        from tapster.core.plugin import get_plugin_manager

        try:
            getattr(get_plugin_manager().hook, hook)(application=self.application)
        except Exception:
            _log.exception("a %s hook failed", hook)

    # -- systemd ---------------------------------------------------------------

    #: Seconds between checks of what ``systemctl status`` shows (sent only when it changed).
    STATUS_INTERVAL = 5.0

    def describe_status(self) -> str:
        """One line for ``systemctl status``: the application, where it listens, how many connections are open."""
        ports = []
        for port in self.reactor.getListeningPorts():
            host = port.getHost()
            where = getattr(host, "name", None)
            where = str(where) if where is not None else f"{getattr(host, 'host', '?')}:{getattr(host, 'port', '?')}"
            ports.append(f"{port.kind.lower()} {where}")
        count = self.reactor.getConnectionCount()
        listening = ", ".join(sorted(ports)) if ports else "no stream ports"
        return f"serving {self.application.name!r} on {listening}; {count} connection{'s' * (count != 1)} open"

    def _notify_ready(self) -> None:
        notifier = self.notifier
        assert notifier is not None
        self._last_status = self.describe_status()
        notifier.ready(self._last_status)
        self.reactor.callLater(self.STATUS_INTERVAL, self._notify_status)
        interval = notifier.watchdog_interval
        if interval is not None:
            _log.info("systemd watchdog: pinging every %gs", interval)
            self._ping_watchdog(interval)

    def _notify_status(self) -> None:
        if self.notifier is None or not self.reactor.running:
            return
        text = self.describe_status()
        if text != self._last_status:
            self._last_status = text
            self.notifier.status(text)
        self.reactor.callLater(self.STATUS_INTERVAL, self._notify_status)

    def _ping_watchdog(self, interval: float) -> None:
        """From the reactor itself: a loop that stalls stops the pings, and systemd acts on it."""
        if self.notifier is None:
            return
        self.notifier.watchdog()
        self.reactor.callLater(interval, self._ping_watchdog, interval)

    async def _stop_services(self) -> None:
        if self.notifier is not None:
            count = self.reactor.getConnectionCount()
            self.notifier.stopping(f"stopping {self.application.name!r}: draining {count} "
                                   f"connection{'s' * (count != 1)}")
        self._announce("tapster_twistd_stopping")
        result = self.application.stopService()
        if result is None:
            return
        try:
            await asyncio.wait_for(asyncio.ensure_future(result), self.shutdown_timeout)
        except asyncio.TimeoutError:
            _log.error("services did not stop within %gs (--shutdown-timeout); forcing", self.shutdown_timeout)
            self.status = ExitStatus.FORCED
        except Exception:
            _log.exception("error while stopping services")
            self.status = ExitStatus.ERROR

    def _save_on_shutdown(self) -> None:
        if not self.save:
            return
        if save_shutdown(self.application, self.save_failure_is_error) != ExitStatus.OK:
            self.status = ExitStatus.ERROR

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:  # asyncio's shape
        exc = context.get("exception")
        message = context.get("message", "unhandled error")
        if exc is not None:
            _log.error("%s", message, exc_info=(type(exc), exc, exc.__traceback__))
            if self.post_mortem is not None:
                self.post_mortem(exc.__traceback__)
        else:
            _log.error("%s", message)
