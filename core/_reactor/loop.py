"""The reactor: Twisted's reactor API over one asyncio (or uvloop) event loop.

asyncio and uvloop do all of the I/O; this class only translates. Time is the
loop's monotonic clock (``seconds()``), timers are the loop's timer handles,
and listening sockets are bound *synchronously* by :mod:`tapster.core._reactor.ports` so that
"address in use" surfaces as an exception from ``listenTCP`` itself.

Lifecycle::

    run()  ─► fire 'startup' (before → during → after) ─► loop.run_forever()
    stop() ─► fire 'shutdown': before-triggers may return awaitables, all are
              awaited ─► drain ─► during ─► after ─► loop.stop() ─► run() returns

The drain (Twisted's ``disconnectAll``, made graceful): listening ports still
open stop accepting, then every stream connection still open, accepted or
made (``connectTCP``, ``TCPClient``), finishes its current exchange and is
closed cleanly (see ``ports._Drain``); what is still open ``shutdownTimeout``
seconds after ``stop()`` (one budget shared with the 'before' triggers, such
as twistd's ``stopService``) is aborted and counted in ``forcedDisconnects``.

``run()`` may be called again after it returned (tests rely on that); Twisted's
reactor is not restartable, tapster's is.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tapster.core._reactor import ports as _ports
from tapster.core._reactor.delayedcall import DelayedCall
from tapster.core._reactor.signals import StopSignals
from tapster.core.errors import ReactorAlreadyRunning, ReactorNotRunning

__all__ = ["AsyncioReactor"]

_log = logging.getLogger("tapster.reactor")
_T = TypeVar("_T")

_PHASES = ("before", "during", "after")
_EVENTS = ("startup", "shutdown")


class _TimerCall(DelayedCall):
    """A DelayedCall backed by a loop timer handle."""

    __slots__ = ("_handle", "_reactor")
    _handle: asyncio.TimerHandle
    _reactor: AsyncioReactor

    def _fire(self) -> None:
        self._reactor._timers.discard(self)
        self._run()


class _Trigger:
    __slots__ = ("phase", "eventType", "func", "args", "kw")

    def __init__(self, phase: str, eventType: str, func: Callable[..., object], args: tuple[object, ...],
                 kw: dict[str, object]) -> None:
        self.phase = phase
        self.eventType = eventType
        self.func = func
        self.args = args
        self.kw = kw


class AsyncioReactor(_ports.PortsMixin):
    """Twisted's reactor interface over an asyncio event loop.

    ``name`` is what ``twistd --reactor`` calls it ("asyncio", "uvloop").
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, name: str = "asyncio") -> None:
        self._loop = loop if loop is not None else asyncio.new_event_loop()
        self.name = name
        self.running = False
        self._stopping = False
        self._started = False
        self._timers: set[_TimerCall] = set()
        self._triggers: dict[str, dict[str, list[_Trigger]]] = {e: {p: [] for p in _PHASES} for e in _EVENTS}
        self._streams: set[_ports._Stream] = set()
        self._listening: set[_ports.ListeningPort] = set()
        #: Seconds a graceful stop may take, from ``stop()``: draining connections
        #: (and twistd's stopService) share it; then what is left is aborted.
        self.shutdownTimeout = 10.0
        #: Connections aborted because a drain ran out of time (since ``run()``).
        self.forcedDisconnects = 0
        self._shutdown_deadline: float | None = None

    # -- the loop ------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio event loop under this reactor, for asyncio-native code."""
        return self._loop

    def seconds(self) -> float:
        """Now, on the loop's monotonic clock (the clock DelayedCall.getTime uses)."""
        return self._loop.time()

    # -- timed calls ---------------------------------------------------------

    def callLater(self, delay: float, callable: Callable[..., object], *args: object, **kw: object) -> DelayedCall:
        """Call ``callable(*args, **kw)`` ``delay`` seconds from now; returns a DelayedCall."""
        if not builtins.callable(callable):
            raise TypeError(f"callLater() needs a callable, not {callable!r}")
        if delay < 0:
            raise ValueError(f"callLater delay must be >= 0, not {delay!r}")
        loop = self._loop
        call = _TimerCall(loop.time() + delay, callable, args, kw, self._cancel_call, self._reset_call, loop.time)
        call._reactor = self
        call._handle = loop.call_at(call.time, call._fire)
        self._timers.add(call)
        return call

    def _cancel_call(self, call: DelayedCall) -> None:
        assert isinstance(call, _TimerCall)
        call._handle.cancel()
        self._timers.discard(call)

    def _reset_call(self, call: DelayedCall) -> None:
        assert isinstance(call, _TimerCall)
        call._handle.cancel()
        call._handle = self._loop.call_at(call.time, call._fire)

    def getListeningPorts(self) -> list[_ports.ListeningPort]:
        """The stream ports listening now (tapster's addition: what twistd reports to systemd and metrics)."""
        return list(self._listening)

    def getConnectionCount(self) -> int:
        """How many stream connections are open now, accepted and outgoing (tapster's addition)."""
        return len(self._streams)

    def getDelayedCalls(self) -> list[DelayedCall]:
        """The calls scheduled with callLater that are still pending."""
        return [c for c in self._timers if c.active()]

    def callWhenRunning(self, callable: Callable[..., object], *args: object, **kw: object) -> object:
        """Call now if the reactor runs (returns what it returned), else once it has started (returns the trigger)."""
        if self.running:
            return callable(*args, **kw)
        return self.addSystemEventTrigger("after", "startup", callable, *args, **kw)

    def callFromThread(self, callable: Callable[..., object], *args: object, **kw: object) -> None:
        """Thread-safe: run ``callable`` in the reactor's thread at the next loop iteration."""
        self._loop.call_soon_threadsafe(functools.partial(callable, *args, **kw))

    def callInThread(self, callable: Callable[..., _T], *args: object, **kw: object) -> asyncio.Future[_T]:
        """Run blocking ``callable`` in the loop's default thread pool; returns a future."""
        return self._loop.run_in_executor(None, functools.partial(callable, *args, **kw))

    # -- system events -------------------------------------------------------

    def addSystemEventTrigger(
        self, phase: str, eventType: str, callable: Callable[..., object], *args: object, **kw: object
    ) -> _Trigger:
        """Run ``callable`` in ``phase`` ('before'/'during'/'after') of ``eventType``.

        'before' triggers may return an awaitable: the event waits for all of
        them before going on (so 'before shutdown' can close connections).
        Returns a handle for :meth:`removeSystemEventTrigger`.
        """
        if phase not in _PHASES:
            raise KeyError(f"unknown trigger phase {phase!r}: use one of {', '.join(_PHASES)}")
        if eventType not in self._triggers:
            self._triggers[eventType] = {p: [] for p in _PHASES}
        trigger = _Trigger(phase, eventType, callable, args, kw)
        self._triggers[eventType][phase].append(trigger)
        return trigger

    def removeSystemEventTrigger(self, triggerID: _Trigger) -> None:
        try:
            self._triggers[triggerID.eventType][triggerID.phase].remove(triggerID)
        except (AttributeError, KeyError, ValueError):
            raise ValueError(f"no such system event trigger: {triggerID!r}") from None

    async def _fire_event(self, eventType: str) -> None:
        phases = self._triggers.setdefault(eventType, {p: [] for p in _PHASES})
        for phase in _PHASES:
            pending: list[Awaitable[object]] = []
            triggers = phases[phase]
            while triggers:  # a trigger may add others to its own phase; each runs once
                trigger = triggers.pop(0)
                try:
                    result = trigger.func(*trigger.args, **trigger.kw)
                except Exception:
                    _log.exception("error in %s-%s trigger %r", phase, eventType, trigger.func)
                    continue
                if phase == "before" and inspect.isawaitable(result):
                    pending.append(result)
            if pending:
                for outcome in await asyncio.gather(*pending, return_exceptions=True):
                    if isinstance(outcome, BaseException):
                        _log.error("error in before-%s trigger: %r", eventType, outcome, exc_info=outcome)
            if eventType == "shutdown" and phase == "before":
                await self._disconnect_all()

    async def _disconnect_all(self) -> None:
        """Stop accepting, then drain every connection still open (after the services had their turn)."""
        for port in list(self._listening):
            try:
                port.stopListening()
            except Exception:
                _log.exception("error closing %r at shutdown", port)
        if self._streams:
            streams = self._streams
            await _ports.drain_streams(self, lambda: streams, self._drain_deadline(None))

    def _drain_deadline(self, timeout: float | None) -> float:
        """When a drain starting now must be over: ``timeout`` from now, never past a stop's deadline."""
        deadline = self._loop.time() + (self.shutdownTimeout if timeout is None else timeout)
        if self._shutdown_deadline is not None:
            deadline = min(deadline, self._shutdown_deadline)
        return deadline

    def fireSystemEvent(self, eventType: str) -> asyncio.Task[None]:
        """Fire ``eventType``'s triggers now; returns the task doing it."""
        return self._loop.create_task(self._fire_event(eventType))

    # -- running and stopping ------------------------------------------------

    def run(self, installSignalHandlers: bool = True) -> None:
        """Fire 'startup', run the loop until :meth:`stop` completed shutdown.

        With ``installSignalHandlers``, SIGTERM and SIGINT follow tapster's one
        signal policy (:mod:`tapster.core._reactor.signals`): the first stops
        gracefully, a second SIGINT raises KeyboardInterrupt out of ``run()``.
        """
        if self._loop.is_running():
            raise ReactorAlreadyRunning("the reactor is already running")
        asyncio.set_event_loop(self._loop)
        self._stopping = False
        self._shutdown_deadline = None
        self.forcedDisconnects = 0
        self._loop.call_soon(self._startup)
        signals = None
        if installSignalHandlers:
            signals = StopSignals(self._stop_on_signal, self._force_on_signal)
            try:
                signals.hold()
            except ValueError:  # not the main thread: leave signals alone
                signals = None
            else:
                self._loop.call_soon(signals.attach, self._loop)
        try:
            self._loop.run_forever()
        finally:
            if signals is not None:
                signals.detach()
            self.running = False

    def _startup(self) -> None:
        self.running = True
        self._started = True
        self.fireSystemEvent("startup")

    def stop(self) -> None:
        """Fire 'shutdown' (waiting for 'before' triggers' awaitables, then draining connections), stop the loop."""
        if self._stopping or not (self.running or self._loop.is_running()):
            raise ReactorNotRunning("Can't stop reactor that isn't running.")
        self._stopping = True
        self._shutdown_deadline = self._loop.time() + self.shutdownTimeout
        self._loop.create_task(self._shutdown())

    async def _shutdown(self) -> None:
        try:
            await self._fire_event("shutdown")
        finally:
            self.running = False
            self._loop.stop()

    def crash(self) -> None:
        """Stop the loop at once, without shutdown triggers."""
        self.running = False
        self._loop.stop()

    def _stop_on_signal(self, name: str) -> None:
        if not self._stopping:
            self.stop()

    @staticmethod
    def _force_on_signal(name: str) -> None:
        raise KeyboardInterrupt(f"second {name}")

    # -- asyncio interop -----------------------------------------------------

    def ensureFuture(self, awaitable: Awaitable[_T]) -> asyncio.Future[_T]:
        """Schedule a coroutine or awaitable on this reactor's loop."""
        return asyncio.ensure_future(awaitable, loop=self._loop)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<tapster reactor {self.name} ({type(self._loop).__module__}) {state}>"
