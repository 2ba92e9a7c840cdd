"""``twistd --workers N``: N processes, each with its own event loop, serving the same sockets.

The parent (the supervisor) binds every listening address of the application
once, before any event loop exists and before privileges are dropped
(:func:`tapster.core.reactor.prebindListeningPorts`), then forks the workers.
Each worker runs the application as a single twistd would (its own reactor,
the same start-up order, the same drain on SIGTERM), except that its servers
adopt the inherited sockets instead of binding, it holds no pidfile and saves
nothing: the kernel spreads the connections over the workers accepting on one
socket.

The supervisor runs no event loop: it waits for signals and for its children
with ``sigtimedwait``, which keeps it simple enough to trust:

* a worker that exits unasked is restarted after 1 s, then 2, 4, ... up to
  30 s while it keeps failing; a worker that ran 10 s resets its backoff;
* SIGTERM or SIGINT is passed to every worker, which drains; whatever still
  runs after ``--shutdown-timeout`` + 5 s is killed; then the supervisor saves
  the shutdown file (its copy of the application, as loaded or reloaded) and
  releases the pidfile;
* SIGHUP reloads the workers one at a time (the next when the previous has
  answered, or after 10 s), so some worker always accepts; SIGUSR1 is passed on.

Only stateless servers make sense with workers: each worker has its own copy of
every object, so what one connection changes, the next (served by another
worker) does not see. A service that says so with ``singleProcess = True`` (the
console shells: a live shell into one of N processes would be a trap) is
refused with ``--workers`` above 1, as are datagram servers.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from tapster.core.errors import TapsterError
from tapster.core.terminal import ExitStatus

__all__ = ["Supervisor", "check_workers_make_sense"]

_log = logging.getLogger("tapster.twistd")

#: Seconds before the first restart of a worker that died; doubled each time, up to MAX_BACKOFF.
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
#: A worker that ran this long before dying is restarted after FIRST_BACKOFF again.
STABLE_AFTER = 10.0
#: Seconds the workers have to report that they started.
START_TIMEOUT = 60.0

_SIGNALS = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


def check_workers_make_sense(application: object) -> None:
    """TapsterError naming the first service that cannot run in several processes."""

    def walk(service: object) -> None:
        if getattr(service, "singleProcess", False) or getattr(getattr(service, "factory", None), "singleProcess",
                                                               False):
            raise TapsterError(
                f"{service!r} keeps state in one process (singleProcess): it cannot run with --workers; "
                "run it in a twistd of its own"
            )
        for child in getattr(service, "services", ()):
            walk(child)

    walk(application)


@dataclass
class _Worker:
    number: int
    pid: int = 0
    started: float = 0.0
    backoff: float = FIRST_BACKOFF
    restart_at: float | None = None
    ready: bool = False
    status_fd: int = -1


class Supervisor:
    """Forks ``count`` workers running ``serve(number, report)`` and supervises them until stopped.

    ``serve`` runs in the child and returns its exit status; ``report()`` is
    for the child to call once it has started (the supervisor reports the
    whole start only when every worker has). ``save`` writes the shutdown
    file; ``reload`` reloads the supervisor's own copy of the application.
    """

    def __init__(self, count: int, serve: Callable[[int, Callable[[], None]], int], shutdown_timeout: float,
                 on_started: Callable[[], object] | None = None, save: Callable[[], int] | None = None,
                 reload: Callable[[], None] | None = None) -> None:
        self.count = count
        self.serve = serve
        self.shutdown_timeout = shutdown_timeout
        self.on_started = on_started
        self.save = save
        self.reload = reload
        self.workers = [_Worker(n) for n in range(1, count + 1)]
        self.stopping = False
        self.status: int = ExitStatus.OK

    # -- children ------------------------------------------------------------------

    def _spawn(self, worker: _Worker) -> None:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read_fd)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            for signum in _SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            code = 1
            try:
                code = self.serve(worker.number, lambda: _write_ready(write_fd))
            except BaseException as e:  # noqa: BLE001 - the child must never return into the parent's code
                message = str(e) if isinstance(e, TapsterError) else f"{type(e).__name__}: {e}"
                _log.error("worker %d failed: %s", worker.number, message)
                try:
                    os.write(write_fd, b"E" + message.encode("utf-8", "replace")[:4000])
                except OSError:
                    pass
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        worker.pid, worker.started, worker.ready, worker.status_fd = pid, time.monotonic(), False, read_fd
        worker.restart_at = None
        _log.info("worker %d started as pid %d", worker.number, pid)

    def _read_status(self, worker: _Worker) -> str | None:
        """'R' once the worker reported it started, 'E<why>' if it failed; None if nothing yet."""
        if worker.status_fd < 0:
            return None
        try:
            data = os.read(worker.status_fd, 4096)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if data.startswith(b"R"):
            worker.ready = True
            return "R"
        if data.startswith(b"E"):
            return data.decode("utf-8", "replace")
        return None

    def _reap(self) -> list[tuple[_Worker, int]]:
        gone = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            for worker in self.workers:
                if worker.pid == pid:
                    worker.pid = 0
                    if worker.status_fd >= 0:
                        os.close(worker.status_fd)
                        worker.status_fd = -1
                    gone.append((worker, os.waitstatus_to_exitcode(status)))
        return gone

    def _signal_all(self, signum: int) -> None:
        for worker in self.workers:
            if worker.pid:
                try:
                    os.kill(worker.pid, signum)
                except ProcessLookupError:
                    pass

    # -- the supervisor's life ---------------------------------------------------------

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            self._start()
            self._supervise()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        if self.save is not None:
            saved = self.save()
            if saved != ExitStatus.OK and self.status == ExitStatus.OK:
                self.status = saved
        return self.status

    def _start(self) -> None:
        """Fork every worker and wait until each says it started; one failing fails the start."""
        for worker in self.workers:
            self._spawn(worker)
        deadline = time.monotonic() + START_TIMEOUT
        while not all(w.ready for w in self.workers):
            for worker in self.workers:
                answer = self._read_status(worker)
                if answer is not None and answer.startswith("E"):
                    self._abort_start()
                    raise TapsterError(f"worker {worker.number} could not start: {answer[1:]}")
            for worker, code in self._reap():
                self._abort_start()
                raise TapsterError(f"worker {worker.number} exited with status {code} while starting "
                                   "(its log says why)")
            if time.monotonic() > deadline:
                self._abort_start()
                raise TapsterError(f"the workers did not start within {START_TIMEOUT:g}s")
            info = signal.sigtimedwait(_SIGNALS, 0.02)
            if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                self._abort_start()
                raise TapsterError("stopped while the workers were starting")
        _log.info("%d workers started", self.count)
        if self.on_started is not None:
            self.on_started()

    def _abort_start(self) -> None:
        self._signal_all(signal.SIGKILL)
        end = time.monotonic() + 5
        while any(w.pid for w in self.workers) and time.monotonic() < end:
            self._reap()
            time.sleep(0.01)

    def _supervise(self) -> None:
        stop_deadline: float | None = None
        reload_queue: list[_Worker] = []
        reload_deadline = 0.0
        while True:
            now = time.monotonic()
            for worker, code in self._reap():
                if self.stopping:
                    _log.info("worker %d exited (status %d)", worker.number, code)
                    continue
                lived = now - worker.started
                if lived >= STABLE_AFTER:
                    worker.backoff = FIRST_BACKOFF
                _log.error("worker %d (pid exited with status %d after %.1fs); restarting it in %gs",
                           worker.number, code, lived, worker.backoff)
                worker.restart_at = now + worker.backoff
                worker.backoff = min(worker.backoff * 2, MAX_BACKOFF)
            if self.stopping:
                if not any(w.pid for w in self.workers):
                    return
                if stop_deadline is not None and now > stop_deadline:
                    _log.error("workers still running %gs after SIGTERM; killing them", self.shutdown_timeout + 5)
                    self._signal_all(signal.SIGKILL)
                    self.status = ExitStatus.FORCED
                    stop_deadline = None
            else:
                for worker in self.workers:
                    if worker.restart_at is not None and now >= worker.restart_at:
                        self._spawn(worker)
                    elif worker.pid and not worker.ready:
                        self._read_status(worker)
                if reload_queue and (reload_queue[0].pid == 0 or now >= reload_deadline
                                     or self._reloaded(reload_queue[0])):
                    reload_queue.pop(0)
                    if reload_queue:
                        reload_deadline = self._reload_one(reload_queue[0])
            info = signal.sigtimedwait(_SIGNALS, 0.05)
            if info is None:
                continue
            signo = info.si_signo
            if signo in (signal.SIGTERM, signal.SIGINT):
                if self.stopping:
                    if signo == signal.SIGINT:
                        _log.error("second interrupt: killing the workers")
                        self._signal_all(signal.SIGKILL)
                        self.status = ExitStatus.FORCED
                    continue
                _log.info("received %s, stopping %d workers", signal.Signals(signo).name, self.count)
                self.stopping = True
                self._signal_all(signal.SIGTERM)
                stop_deadline = time.monotonic() + self.shutdown_timeout + 5
            elif signo == signal.SIGHUP and not self.stopping:
                _log.info("received SIGHUP, reloading the workers one at a time")
                if self.reload is not None:
                    try:
                        self.reload()
                    except Exception as e:  # noqa: BLE001 - a file that does not load is not sent to the workers
                        _log.error("%s", e)
                        continue
                reload_queue = [w for w in self.workers if w.pid]
                if reload_queue:
                    reload_deadline = self._reload_one(reload_queue[0])
            elif signo == signal.SIGUSR1:
                self._signal_all(signal.SIGUSR1)

    def _reload_one(self, worker: _Worker) -> float:
        worker.ready = False
        try:
            os.kill(worker.pid, signal.SIGHUP)
        except ProcessLookupError:
            pass
        return time.monotonic() + 10.0

    def _reloaded(self, worker: _Worker) -> bool:
        """The worker wrote 'R' again after its reload (the runner's on_reloaded report)."""
        self._read_status(worker)
        return worker.ready


def _write_ready(fd: int) -> None:
    try:
        os.write(fd, b"R")
    except OSError:
        pass


def worker_log_filter(number: int) -> logging.Filter:
    """Appends `` w<number>`` to the system of every line a worker logs."""

    class _Worker(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.system = f"{getattr(record, 'system', '-')} w{number}"
            return True

    return _Worker()


def title_for(number: int) -> str:
    return f"{os.path.basename(sys.argv[0]) or 'twistd'} worker {number}"
