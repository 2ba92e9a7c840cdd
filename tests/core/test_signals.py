"""The one signal policy (tapster.core.reactor.StopSignals), with real signals sent to this process."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest

from tapster.core.reactor import StopSignals
from tapster.core.testing import freshReactor


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def stop(self, name: str) -> None:
        self.events.append(f"stop {name}")

    def force(self, name: str) -> None:
        self.events.append(f"force {name}")

    def reopen(self) -> None:
        self.events.append("reopen")


def run_loop_with(policy: StopSignals, *signums: int, hold_first: tuple[int, ...] = ()) -> None:
    """Hold the signals, send ``hold_first`` before the loop runs, then ``signums`` once it does."""
    loop = asyncio.new_event_loop()
    try:
        policy.hold()
        for signum in hold_first:
            os.kill(os.getpid(), signum)
        loop.call_soon(policy.attach, loop)

        async def send() -> None:
            for signum in signums:
                os.kill(os.getpid(), signum)
                await asyncio.sleep(0.01)
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and delivered(policy) < len(signums) + len(hold_first):
                await asyncio.sleep(0.005)

        loop.run_until_complete(send())
    finally:
        policy.detach()
        loop.close()


def delivered(policy: StopSignals) -> int:
    """Signals the policy has acted on so far: stop signals counted, extra ones by their callback."""
    events: list[str] = policy.on_stop.__self__.events  # type: ignore[attr-defined]
    return policy.stops + events.count("reopen")


def test_first_signal_stops_second_sigint_forces() -> None:
    r = Recorder()
    run_loop_with(StopSignals(r.stop, r.force), signal.SIGTERM, signal.SIGINT)
    assert r.events == ["stop SIGTERM", "force SIGINT"]


def test_a_repeated_sigterm_never_cuts_the_shutdown_short() -> None:
    r = Recorder()
    policy = StopSignals(r.stop, r.force)
    run_loop_with(policy, signal.SIGTERM, signal.SIGTERM, signal.SIGTERM)
    assert r.events == ["stop SIGTERM"] and policy.stops == 3


def test_signals_before_the_loop_runs_are_held_and_delivered() -> None:
    r = Recorder()
    run_loop_with(StopSignals(r.stop, r.force, {signal.SIGUSR1: r.reopen}),
                  hold_first=(signal.SIGUSR1, signal.SIGTERM))
    assert r.events == ["reopen", "stop SIGTERM"]


def test_ctrl_c_twice_while_starting_aborts_at_once() -> None:
    r = Recorder()
    policy = StopSignals(r.stop, r.force)
    policy.hold()
    try:
        signal.raise_signal(signal.SIGINT)  # the handler runs before raise_signal returns
        assert r.events == []  # held, not acted on: the loop is not running
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    finally:
        policy.detach()


def test_detach_gives_the_signals_back() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    r = Recorder()
    run_loop_with(StopSignals(r.stop, r.force, {signal.SIGUSR1: r.reopen}), signal.SIGUSR1)
    assert {s: signal.getsignal(s) for s in before} == before


def test_the_reactor_follows_the_same_policy() -> None:
    """reactor.run(): SIGTERM stops it through the shutdown triggers; a second SIGINT raises out of run()."""
    with freshReactor("asyncio") as reactor:
        fired: list[str] = []
        reactor.addSystemEventTrigger("before", "shutdown", lambda: fired.append("shutdown"))
        reactor.callWhenRunning(os.kill, os.getpid(), signal.SIGTERM)
        reactor.run()
        assert fired == ["shutdown"]

    with freshReactor("asyncio") as reactor:
        never: asyncio.Future[Any] = reactor.loop.create_future()
        reactor.addSystemEventTrigger("before", "shutdown", lambda: never)  # a shutdown that never ends

        def twice() -> None:
            os.kill(os.getpid(), signal.SIGINT)
            reactor.callLater(0.05, os.kill, os.getpid(), signal.SIGINT)

        reactor.callWhenRunning(twice)
        with pytest.raises(KeyboardInterrupt, match="second SIGINT"):
            reactor.run()
        never.set_result(None)  # let the abandoned shutdown finish before the loop is closed
        reactor.loop.run_forever()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
