"""DelayedCall: the handle ``callLater`` returns, shared by the real reactor and ``tapster.core.testing.Clock``.

The class knows nothing of asyncio: whoever schedules it passes ``cancel`` and
``reset`` callbacks, so the same semantics (and the same errors) hold for the
real reactor and for the test clock.
"""

from __future__ import annotations

from collections.abc import Callable

from tapster.core.errors import AlreadyCalled, AlreadyCancelled

__all__ = ["DelayedCall"]


class DelayedCall:
    """A call scheduled for a later time.

    ``time`` is in the scheduler's clock (``reactor.seconds()``). ``cancel()``
    and ``reset()``/``delay()`` on a call that has already run raise
    :class:`AlreadyCalled`; on a cancelled one, :class:`AlreadyCancelled`.
    """

    __slots__ = (
        "time",
        "func",
        "args",
        "kw",
        "called",
        "cancelled",
        "_canceller",
        "_resetter",
        "_seconds",
        "__weakref__",
    )

    def __init__(
        self,
        time: float,
        func: Callable[..., object],
        args: tuple[object, ...],
        kw: dict[str, object],
        cancel: Callable[[DelayedCall], None],
        reset: Callable[[DelayedCall], None],
        seconds: Callable[[], float],
    ) -> None:
        self.time = time
        self.func = func
        self.args = args
        self.kw = kw
        self.called = False
        self.cancelled = False
        self._canceller = cancel
        self._resetter = reset
        self._seconds = seconds

    def getTime(self) -> float:
        """When the call will run, in the scheduler's clock."""
        return self.time

    def active(self) -> bool:
        """True until the call has run or been cancelled."""
        return not (self.called or self.cancelled)

    def _check_active(self) -> None:
        if self.cancelled:
            raise AlreadyCancelled(f"{self!r} was already cancelled")
        if self.called:
            raise AlreadyCalled(f"{self!r} has already run")

    def cancel(self) -> None:
        self._check_active()
        self.cancelled = True
        self._canceller(self)

    def reset(self, secondsFromNow: float) -> None:
        """Run the call ``secondsFromNow`` seconds from now instead."""
        self._check_active()
        self.time = self._seconds() + secondsFromNow
        self._resetter(self)

    def delay(self, secondsLater: float) -> None:
        """Push the call ``secondsLater`` seconds later than currently scheduled."""
        self._check_active()
        self.time += secondsLater
        self._resetter(self)

    def _run(self) -> None:
        """Called by the scheduler when the time has come."""
        if self.cancelled or self.called:
            return
        self.called = True
        self.func(*self.args, **self.kw)

    def __repr__(self) -> str:
        name = getattr(self.func, "__qualname__", repr(self.func))
        state = "called" if self.called else "cancelled" if self.cancelled else f"at {self.time:.3f}"
        return f"<DelayedCall {name} {state}>"
