"""The runner in-process on a private reactor: start order, shutdown save, forced stop."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tapster.core import persist
from tapster.core._builtin_hooks import _asyncio_reactor
from tapster.core.errors import CannotListenError
from tapster.core.internet import TCPServer
from tapster.core.protocol import Factory, Protocol
from tapster.core.service import Application, Service
from tapster.twistd.pidfile import NullPidFile, PidFile
from tapster.twistd.runner import ExitStatus, Runner


class Recorder(Service):
    """Records the calls it gets, in a list shared by the test."""

    def __init__(self, name: str, log: list) -> None:
        self.name = name
        self.log = log

    def privilegedStartService(self) -> None:
        self.log.append(("privileged", self.name))

    def startService(self) -> None:
        Service.startService(self)
        self.log.append(("start", self.name))

    def stopService(self):
        Service.stopService(self)
        self.log.append(("stop", self.name))


class Slow(Service):
    def stopService(self):
        Service.stopService(self)
        return asyncio.get_running_loop().create_future()  # never completes


@pytest.fixture
def reactor():
    r = _asyncio_reactor()
    yield r
    r.loop.close()


def test_start_order_and_shutdown_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reactor) -> None:
    monkeypatch.chdir(tmp_path)
    log: list = []
    app = Application("demo")
    Recorder("a", log).setServiceParent(app)
    Recorder("b", log).setServiceParent(app)
    runner = Runner(app, reactor, PidFile("demo.pid"), save=True)
    reactor.callWhenRunning(lambda: log.append(("pidfile", Path("demo.pid").exists())))
    reactor.callWhenRunning(reactor.stop)
    assert runner.run() == ExitStatus.OK
    assert log == [
        ("privileged", "a"), ("privileged", "b"), ("start", "a"), ("start", "b"),
        ("pidfile", True), ("stop", "b"), ("stop", "a"),
    ]
    assert not Path("demo.pid").exists()
    saved = persist.load(str(tmp_path / "demo-shutdown.tap"))
    assert [s.name for s in saved] == ["a", "b"] and not saved.running


def test_no_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reactor) -> None:
    monkeypatch.chdir(tmp_path)
    app = Application("demo")
    reactor.callWhenRunning(reactor.stop)
    assert Runner(app, reactor, NullPidFile(), save=False).run() == ExitStatus.OK
    assert list(tmp_path.iterdir()) == []


def test_slow_stop_is_forced_after_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reactor) -> None:
    monkeypatch.chdir(tmp_path)
    app = Application("demo")
    Slow().setServiceParent(app)
    reactor.callWhenRunning(reactor.stop)
    started = reactor.loop.time()
    assert Runner(app, reactor, NullPidFile(), save=False, shutdown_timeout=0.2).run() == ExitStatus.FORCED
    assert reactor.loop.time() - started < 5


def test_failed_start_closes_ports_bound_so_far_and_releases_pidfile(tmp_path: Path, monkeypatch, reactor) -> None:
    monkeypatch.chdir(tmp_path)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        app = Application("demo")
        first = TCPServer(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        first.reactor = reactor
        first.setServiceParent(app)
        second = TCPServer(busy, Factory.forProtocol(Protocol), interface="127.0.0.1")
        second.reactor = reactor
        second.setServiceParent(app)
        with pytest.raises(CannotListenError, match=f"127.0.0.1:{busy}"):
            Runner(app, reactor, PidFile("demo.pid")).run()
    assert first._port is None  # closed again
    assert not Path("demo.pid").exists()


def test_sigusr1_reopens_the_logs_and_keeps_serving(tmp_path: Path, monkeypatch, reactor) -> None:
    import os
    import signal

    monkeypatch.chdir(tmp_path)
    reopened: list[int] = []
    runner = Runner(Application("demo"), reactor, NullPidFile(), save=False,
                    reopen_logs=lambda: reopened.append(1))
    reactor.callWhenRunning(os.kill, os.getpid(), signal.SIGUSR1)

    def stop_when_reopened() -> None:
        if reopened:
            reactor.stop()
        else:
            reactor.callLater(0.01, stop_when_reopened)

    reactor.callWhenRunning(stop_when_reopened)
    assert runner.run() == ExitStatus.OK
    assert reopened == [1]


def test_user_and_group_given_to_the_runner_override_the_applications(tmp_path: Path, monkeypatch, reactor) -> None:
    import os

    from tapster.twistd.privileges import Ids

    monkeypatch.chdir(tmp_path)
    app = Application("demo", uid="no-such-user-xyz", gid="no-such-group-xyz")
    reactor.callWhenRunning(reactor.stop)
    ids = Ids(os.getuid(), os.getgid(), None, "ourselves")
    assert Runner(app, reactor, NullPidFile(), save=False, ids=ids).run() == ExitStatus.OK


def test_unhandled_loop_error_goes_to_the_post_mortem_hook(tmp_path: Path, monkeypatch, reactor) -> None:
    monkeypatch.chdir(tmp_path)
    seen: list = []

    def boom() -> None:
        raise RuntimeError("unhandled")

    def start_failing_task() -> None:
        reactor.loop.call_soon(lambda: reactor.loop.call_exception_handler(
            {"message": "task failed", "exception": _raised()}))
        reactor.callLater(0.05, reactor.stop)

    def _raised() -> BaseException:
        try:
            boom()
        except RuntimeError as e:
            return e
        raise AssertionError

    reactor.callWhenRunning(start_failing_task)
    runner = Runner(Application("demo"), reactor, NullPidFile(), save=False, post_mortem=seen.append)
    assert runner.run() == ExitStatus.OK
    assert len(seen) == 1 and seen[0].tb_frame is not None


class KillsItself(Recorder):
    """Sends ``signum`` to its own process while starting, before the loop runs."""

    def __init__(self, name: str, log: list, signum: int) -> None:
        super().__init__(name, log)
        self.signum = signum

    def startService(self):
        import os

        super().startService()
        os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_sigterm_during_start_up_stops_gracefully_once_running(tmp_path: Path, monkeypatch, loop: str) -> None:
    """A supervisor may signal as soon as the port accepts: neither lost (uvloop) nor fatal."""
    import signal

    from tapster.core._builtin_hooks import _uvloop_reactor

    monkeypatch.chdir(tmp_path)
    reactor = _asyncio_reactor() if loop == "asyncio" else _uvloop_reactor()
    try:
        log: list = []
        app = Application("demo")
        KillsItself("a", log, signal.SIGTERM).setServiceParent(app)
        before = signal.getsignal(signal.SIGTERM)
        assert Runner(app, reactor, NullPidFile(), save=False).run() == ExitStatus.OK
        assert log == [("privileged", "a"), ("start", "a"), ("stop", "a")]
        assert signal.getsignal(signal.SIGTERM) is before  # restored
    finally:
        reactor.loop.close()


def test_second_sigint_during_start_up_aborts_it(tmp_path: Path, monkeypatch, reactor) -> None:
    import signal

    monkeypatch.chdir(tmp_path)
    log: list = []
    app = Application("demo")
    KillsItself("a", log, signal.SIGINT).setServiceParent(app)
    KillsItself("b", log, signal.SIGINT).setServiceParent(app)
    with pytest.raises(KeyboardInterrupt):
        Runner(app, reactor, NullPidFile(), save=False).run()
    assert ("stop", "a") in log  # the partial start was undone


def test_lifecycle_hooks_are_called_with_the_application(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         reactor) -> None:
    """tapster_twistd_started once the reactor runs, tapster_twistd_stopping when shutdown begins."""
    from tapster.core.hookspecs import hookimpl
    from tapster.core.plugin import get_plugin_manager

    monkeypatch.chdir(tmp_path)
    calls: list[tuple[str, str]] = []

    class Hooks:
        @hookimpl
        def tapster_twistd_started(self, application):
            calls.append(("started", application.name))

        @hookimpl
        def tapster_twistd_stopping(self, application):
            calls.append(("stopping", application.name))
            raise RuntimeError("a broken hook must not stop the shutdown")

    hooks = Hooks()
    pm = get_plugin_manager()
    pm.register(hooks)
    try:
        app = Application("hooked")
        reactor.callWhenRunning(reactor.callLater, 0, reactor.stop)
        assert Runner(app, reactor, NullPidFile(), save=True).run() == ExitStatus.OK
    finally:
        pm.unregister(hooks)
    assert calls == [("started", "hooked"), ("stopping", "hooked")]
    assert (tmp_path / "hooked-shutdown.tap").is_file()
