"""The console login under attack (issue 9, items 11-14), telnet side, without sockets.

* parallel guesses from one address are throttled as if they came one after another;
* the right password given after the longest wait still logs in (the wait does not
  count against the login deadline);
* the login deadline is absolute, and connections that have not logged in cannot
  keep an administrator out;
* what a connection waiting for its password check can make the server hold is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tapster.core.service import Application
from tapster.core.testing import Clock
from tapster.plugins._console import negotiation as tn
from tapster.plugins._console.auth import Throttle
from tapster.plugins._console.console import Console
from tapster.plugins._console.telnet import TelnetShellFactory
from tests.plugins.test_telnet_protocol import Session, cheap_hash

HOST = "127.0.0.1"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def console(clock: Clock) -> Console:
    console = Console("admin", cheap_hash("pw"), idleTimeout=900, maxSessions=2)
    console.clock = clock
    console.start(Application("demo"), "telnet")
    return console


@pytest.fixture
def factory(console: Console) -> TelnetShellFactory:
    return TelnetShellFactory(console)


def fail_from(console: Console, times: int, host: str = HOST) -> None:
    """Record ``times`` failed logins from ``host``, as earlier connections would have."""
    for _ in range(times):
        console.throttle.failed(host)


def incorrect(sessions: list[Session]) -> int:
    """How many of ``sessions`` have been told "Login incorrect" (reads their output)."""
    for s in sessions:
        s.seen = getattr(s, "seen", "") + s.text()
    return sum(s.seen.count("Login incorrect") for s in sessions)


# -- 11. parallel guesses ------------------------------------------------------------


def test_throttle_reserves_a_slot_for_every_attempt_in_flight() -> None:
    """The documented schedule (3 free, then 1 s, 2 s, 4 s...) holds however many attempts
    are made at once: each one waits for the one before it, as if they came in turn."""
    clock = Clock()
    throttle = Throttle(clock.seconds)
    attempts = [throttle.reserve(HOST) for _ in range(6)]
    assert [a.delay for a in attempts] == [0, 0, 0, 1, 3, 7]
    for a in attempts[:3]:
        a.failed()
    assert throttle.failures(HOST) == 3
    later = throttle.reserve(HOST)  # 3 failed + 3 still in flight: the 7th attempt
    assert later.delay == 7 + 8
    assert throttle.reserve("10.0.0.9").delay == 0  # other addresses are not affected


def test_an_abandoned_attempt_gives_back_its_place_but_moves_no_one() -> None:
    clock = Clock()
    throttle = Throttle(clock.seconds, free=1)
    first, second, third = (throttle.reserve(HOST) for _ in range(3))
    assert (first.delay, second.delay, third.delay) == (0, 1, 3)
    second.abandoned()
    second.abandoned()  # idempotent
    assert throttle.inFlight(HOST) == 2
    first.failed()
    third.failed()
    assert throttle.failures(HOST) == 2 and throttle.inFlight(HOST) == 0
    clock.advance(10)
    assert throttle.reserve(HOST).delay == 2  # two failures recorded: the abandoned one is not a failure


def test_forgetting_an_address_keeps_its_attempts_in_flight() -> None:
    clock = Clock()
    throttle = Throttle(clock.seconds, free=0, forget=60, capacity=2)
    waiting = throttle.reserve(HOST)
    for i in range(5):
        throttle.failed(f"10.0.0.{i}")  # other addresses crowd the table
    clock.advance(120)
    assert throttle.inFlight(HOST) == 1  # not dropped while an attempt is in flight
    assert throttle.reserve(HOST).delay > 0
    waiting.failed()


def test_parallel_connections_get_their_checks_one_wait_after_another(factory: TelnetShellFactory,
                                                                      clock: Clock) -> None:
    """Five connections each send a wrong password at t=0: checked at 0, 0, 0, 1 and 3 s,
    exactly as five guesses made one after another would be."""
    factory.console.maxSessions = 10
    sessions = [Session(factory, port=1000 + i) for i in range(5)]
    for i, s in enumerate(sessions):
        s.take()
        s.login(password=f"bad{i}")
    assert incorrect(sessions) == 3
    clock.advance(1)
    assert incorrect(sessions) == 4
    clock.advance(1.99)
    assert incorrect(sessions) == 4
    clock.advance(0.01)
    assert incorrect(sessions) == 5


class RecordingExecutor(ThreadPoolExecutor):
    """The loop's executor, remembering every password check handed to it (when it is handed over)."""

    def __init__(self) -> None:
        super().__init__(max_workers=8)
        self.submitted: list[str] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.submitted.append(args[-1])
        return super().submit(fn, *args, **kwargs)


def test_checks_running_in_worker_threads_count_as_attempts(factory: TelnetShellFactory, clock: Clock) -> None:
    """The slow hash runs in a worker thread: guesses whose check has not returned yet are
    counted, so five at once do not all start before the first failure is recorded."""
    factory.console.maxSessions = 10

    async def main() -> list[int]:
        executor = RecordingExecutor()
        loop = asyncio.get_running_loop()
        loop.set_default_executor(executor)
        sessions = [Session(factory, port=2000 + i) for i in range(5)]
        for i, s in enumerate(sessions):
            s.take()
            s.login(password=f"bad{i}")
        counts = [len(executor.submitted)]  # handed to the threads at once, before any verdict

        async def until(n: int) -> None:
            deadline = loop.time() + 5
            while incorrect(sessions) < n and loop.time() < deadline:
                await asyncio.sleep(0.002)

        await until(3)
        clock.advance(1)
        counts.append(len(executor.submitted))
        await until(4)
        clock.advance(1.9)
        counts.append(len(executor.submitted))
        clock.advance(0.1)
        counts.append(len(executor.submitted))
        await until(5)
        counts.append(incorrect(sessions))
        return counts

    assert asyncio.run(main()) == [3, 4, 4, 5, 5]


# -- 12. the right password after the longest wait -----------------------------------------


def test_the_right_password_after_the_longest_wait_logs_in(factory: TelnetShellFactory, clock: Clock) -> None:
    """Nine failures: the next attempt waits the full minute, as long as the login timeout.
    The wait is the server's, not the client's: it does not count against the deadline."""
    fail_from(factory.console, 9)
    s = Session(factory)
    s.take()
    clock.advance(5)  # the administrator takes a few seconds to type
    s.login()
    clock.advance(59.9)
    assert ">>> " not in s.text() and not s.closed
    clock.advance(0.2)
    out = s.text()
    assert "timed out" not in out and out.endswith(">>> ")
    assert factory.console.throttle.failures(HOST) == 0  # the login forgets the address


def test_after_a_delayed_failure_the_login_clock_goes_on_where_it_stopped(factory: TelnetShellFactory,
                                                                          clock: Clock) -> None:
    fail_from(factory.console, 8)  # the next attempt waits 32 s
    s = Session(factory)
    clock.advance(20)
    s.login(password="bad")
    clock.advance(32)  # 52 s since the connection, 20 of them the client's own
    assert "Login incorrect" in s.text() and not s.closed
    clock.advance(39.9)
    assert not s.closed
    clock.advance(0.2)
    assert s.closed and "login timed out" in s.text()


# -- 13. the login deadline; connections that have not logged in ----------------------------


def test_input_does_not_extend_the_login_deadline(factory: TelnetShellFactory, clock: Clock) -> None:
    s = Session(factory)
    for _ in range(5):
        clock.advance(10)
        s.send(bytes([tn.IAC, tn.NOP]))
        s.send("a")
        s.send(bytes([tn.IAC, tn.AYT]))
    clock.advance(9.99)
    assert not s.closed
    clock.advance(0.02)
    assert s.closed and "login timed out" in s.text()
    assert factory.console.sessions == []


def test_a_logged_in_session_is_still_closed_only_after_being_idle(factory: TelnetShellFactory,
                                                                   clock: Clock) -> None:
    s = Session(factory)
    clock.advance(50)
    s.login()
    clock.advance(30)  # past the login deadline: it no longer applies
    assert not s.closed and s.text().endswith(">>> ")


def test_connections_that_never_log_in_cannot_keep_an_administrator_out(factory: TelnetShellFactory,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tapster.console")
    console = factory.console
    squatters = [Session(factory, host="10.9.9.9", port=3000 + i) for i in range(console.maxPendingLogins)]
    assert not any(s.closed for s in squatters)  # more than --max-sessions (2) may wait at the login prompt
    admin = Session(factory, port=4000)
    assert not admin.closed
    assert squatters[0].closed and not any(s.closed for s in squatters[1:])  # the oldest made room
    assert "too many connections are waiting to log in" in squatters[0].text()
    assert admin.login().text().endswith(">>> ")
    assert any("closing the oldest connection that has not logged in" in r.getMessage() for r in caplog.records)


def test_max_sessions_limits_the_logged_in_sessions(factory: TelnetShellFactory) -> None:
    a, b = Session(factory, port=1), Session(factory, port=2)
    waiting = Session(factory, port=3)  # admitted: only logged-in sessions count against --max-sessions
    assert not waiting.closed
    a.login()
    b.login()
    refused = Session(factory, port=4)
    assert refused.closed and "Too many console sessions (2)" in refused.text()
    waiting.take()
    waiting.login()
    assert waiting.closed and "Too many console sessions (2)" in waiting.text()
    assert ">>> " not in waiting.text()
    assert len(factory.console.sessions) == 2


# -- 14. what a connection waiting for its check can make the server hold ---------------------


def test_input_while_the_password_is_checked_is_bounded_and_reading_stops(
    factory: TelnetShellFactory, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tapster.console")
    fail_from(factory.console, 3)  # the check waits 1 s
    s = Session(factory)
    s.take()
    s.login(password="bad")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        chunk = b"\n" * 65536
        for _ in range(4):  # 256 KiB: at most one read arrives after the pause (StringTransport ignores it)
            s.send(chunk)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert s.transport.producerState == "paused"
    assert not s.closed
    assert held < 400_000, held  # what was read, once: no object per line (10 MB of newlines held 847 MiB)
    assert any("stopped reading" in r.getMessage() for r in caplog.records)
    clock.advance(1)
    assert "Login incorrect" in s.text()
    assert s.transport.producerState == "producing"  # reading again after the verdict


def test_a_transport_that_keeps_delivering_past_the_bound_is_dropped(
    factory: TelnetShellFactory, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tapster.console")
    fail_from(factory.console, 3)
    s = Session(factory)
    s.login()
    for _ in range(40):  # 2.5 MiB: a transport ignoring pauseProducing
        if s.closed:
            break
        s.send(b"x = 1\n" * 10923)
    assert s.closed
    assert any("closing the connection" in r.getMessage() and "before logging in" in r.getMessage()
               for r in caplog.records)
    assert factory.console.sessions == []
    assert clock.getDelayedCalls() == []
    assert factory.console.throttle.inFlight(HOST) == 0


def test_what_was_typed_ahead_runs_after_the_login_in_order(factory: TelnetShellFactory, clock: Clock) -> None:
    fail_from(factory.console, 3)
    s = Session(factory)
    s.take()
    s.send("admin\r\npw\r\nx = 6\r\n")
    s.send("print(x * 7)\r\n")
    s.send(bytes([tn.IAC, tn.AYT]))  # answered at once, even while waiting
    assert "[yes]" in s.text()
    clock.advance(1)
    out = s.text()
    assert out.endswith(">>> ") and "42" in out


def test_what_was_typed_ahead_is_dropped_after_a_failed_login(factory: TelnetShellFactory, clock: Clock) -> None:
    fail_from(factory.console, 3)
    s = Session(factory)
    s.take()
    s.send("admin\r\nbad\r\nimport os\r\n")
    clock.advance(1)
    out = s.text()
    assert out.endswith("login: ") and "Password" not in out.split("Login incorrect")[-1]
