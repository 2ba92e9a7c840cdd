"""Repeating calls on the reactor (Twisted's ``twisted.internet.task`` essentials)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from tapster.core.interfaces import IDelayedCall, IReactorTime

__all__ = ["LoopingCall"]

_log = logging.getLogger("tapster.task")


class LoopingCall:
    """Call ``f(*a, **kw)`` every ``interval`` seconds.

    Runs are aligned on the start time; intervals missed because a call took
    too long are skipped, not queued. If ``f`` returns an awaitable, the next
    run waits for it. An exception stops the loop and is logged. ``clock`` is
    the shared reactor unless set (tests set a ``tapster.core.testing.Clock``).
    """

    def __init__(self, f: Callable[..., object], *a: object, **kw: object) -> None:
        self.f = f
        self.a = a
        self.kw = kw
        self.clock: IReactorTime | None = None
        self.running = False
        self.interval: float | None = None
        self.call: IDelayedCall | None = None
        self._start_time = 0.0
        self._scheduled_for: float | None = None  # when the pending (or running) call was due
        self._done: asyncio.Future[LoopingCall] | None = None

    def _clock(self) -> IReactorTime:
        if self.clock is None:
            from tapster.core import reactor

            self.clock = reactor.getReactor()
        return self.clock

    def start(self, interval: float, now: bool = True) -> asyncio.Future[LoopingCall] | None:
        """Start looping; returns a future (when the clock has a loop) completed by :meth:`stop`."""
        if self.running:
            raise RuntimeError("Tried to start an already running LoopingCall.")
        if interval < 0:
            raise ValueError("interval must be >= 0")
        clock = self._clock()
        self.running = True
        self.interval = interval
        self._start_time = clock.seconds()
        self._scheduled_for = self._start_time
        loop = getattr(clock, "loop", None)
        # Keep our own reference: a first call that fails completes (and forgets) self._done.
        done = self._done = loop.create_future() if loop is not None else None
        if now:
            self()
        else:
            self._schedule_next()
        return done

    def stop(self) -> None:
        """Stop looping; the future returned by :meth:`start` completes with this LoopingCall."""
        if not self.running:
            raise RuntimeError("Tried to stop a LoopingCall that was not running.")
        self.running = False
        if self.call is not None and self.call.active():
            self.call.cancel()
        self.call = None
        self._finish(None)

    def reset(self) -> None:
        """Restart the interval from now."""
        if not self.running:
            raise RuntimeError("Tried to reset a LoopingCall that was not running.")
        if self.call is not None and self.call.active():
            self.call.cancel()
        self._start_time = self._scheduled_for = self._clock().seconds()
        self._schedule_next()

    def _finish(self, exc: BaseException | None) -> None:
        done, self._done = self._done, None
        if done is not None and not done.done():
            if exc is None:
                done.set_result(self)
            else:
                done.set_exception(exc)

    def __call__(self) -> None:
        self.call = None
        try:
            result = self.f(*self.a, **self.kw)
        except Exception as e:
            _log.exception("LoopingCall of %r failed; stopping it", self.f)
            self.running = False
            self._finish(e)
            return
        if inspect.isawaitable(result):
            import asyncio

            # The clock's loop, not asyncio's notion of the current one: start() may
            # run before the loop does, and then get_event_loop() is another loop.
            fut = asyncio.ensure_future(result, loop=getattr(self._clock(), "loop", None))
            fut.add_done_callback(self._after_awaitable)
        elif self.running:
            self._schedule_next()

    def _after_awaitable(self, fut: asyncio.Future[object]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self.running = False
            self._finish(fut.exception() if not fut.cancelled() else None)
            return
        if self.running:
            self._schedule_next()

    def _schedule_next(self) -> None:
        clock = self._clock()
        interval = self.interval or 0.0
        now = clock.seconds()
        if interval == 0:
            self.call = clock.callLater(0, self)
            return
        elapsed = now - self._start_time
        runs = int(elapsed // interval) + 1
        when = self._start_time + runs * interval
        # A timer may fire a hair early (uvloop's clock counts milliseconds), which would
        # put "the next slot" on the slot that just ran: never run twice for one slot.
        if self._scheduled_for is not None:
            when = max(when, self._scheduled_for + interval)
        self._scheduled_for = when
        self.call = clock.callLater(max(0.0, when - now), self)

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        for key in ("call", "_done", "clock", "running", "_scheduled_for"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:  # Any: the pickled attributes, each its own type
        self.__init__(state.pop("f"), *state.pop("a", ()), **state.pop("kw", {}))  # type: ignore[misc]  # re-running __init__ rebuilds what was not pickled
        self.__dict__.update(state)

    def __repr__(self) -> str:
        name = getattr(self.f, "__qualname__", self.f)
        return f"<LoopingCall {name} every {self.interval}s{' running' if self.running else ''}>"
