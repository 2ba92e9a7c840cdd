"""The one signal policy of tapster: what SIGTERM and SIGINT do to a running reactor.

Both ``reactor.run()`` (a script's own reactor) and twistd's runner use this
class, so they cannot disagree:

* The first SIGTERM or SIGINT starts a graceful stop (``on_stop``): shutdown
  triggers run, services stop, twistd saves.
* A second SIGINT (Ctrl-C pressed again while stopping) forces the exit
  (``on_force``): the user has said twice that they want out. A second
  SIGTERM is only logged: supervisors repeat SIGTERM while waiting, and that
  must not cut a drain or a shutdown save short (their last word is SIGKILL).
* Signals that arrive before the loop runs are *held* (:meth:`hold`) and
  delivered once it does (:meth:`attach`): ports accept connections from
  ``privilegedStartService`` on, so a supervisor may send SIGTERM early, and
  uvloop loses a signal that arrives between ``add_signal_handler`` and the
  start of its loop. Ctrl-C twice while starting aborts the start at once.

``extra`` maps more signals to plain callbacks (twistd's SIGUSR1 log reopen),
held and delivered the same way.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from types import FrameType

    # What signal.signal() accepts and returns (typeshed calls it signal._HANDLER).
    _Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None

__all__ = ["StopSignals", "STOP_SIGNALS"]

_log = logging.getLogger("tapster.reactor")

STOP_SIGNALS: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """SIGTERM/SIGINT (and ``extra`` signals) for one run of a loop; see the module's rules."""

    def __init__(self, on_stop: Callable[[str], None], on_force: Callable[[str], None],
                 extra: Mapping[int, Callable[[], None]] | None = None) -> None:
        self.on_stop = on_stop
        self.on_force = on_force
        self.extra = dict(extra or {})
        self.stops = 0
        self._pending: list[int] = []
        self._previous: dict[int, _Handler] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def signals(self) -> tuple[int, ...]:
        return STOP_SIGNALS + tuple(self.extra)

    # -- before the loop runs

    def hold(self) -> None:
        """Record the signals until :meth:`attach` (main thread only); a second SIGINT aborts at once."""
        for signum in self.signals:
            self._previous.setdefault(signum, signal.signal(signum, self._record))

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and signal.SIGINT in self._pending:
            raise KeyboardInterrupt
        self._pending.append(signum)

    # -- with the loop running

    def attach(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Handle the signals on ``loop`` from now on and deliver the held ones; False off the main thread."""
        try:
            for signum in self.signals:
                if signum not in self._previous:
                    self._previous[signum] = signal.getsignal(signum)
                loop.add_signal_handler(signum, self.deliver, signum)
        except (RuntimeError, ValueError):  # not the main thread: signals are not ours to take
            self._restore_handlers()
            return False
        self._loop = loop
        pending, self._pending = self._pending, []
        for signum in pending:
            self.deliver(signum)
        return True

    def deliver(self, signum: int) -> None:
        """Apply the policy to one signal (what the loop's handler calls)."""
        callback = self.extra.get(signum)
        if callback is not None:
            callback()
            return
        name = signal.Signals(signum).name
        self.stops += 1
        if self.stops == 1:
            _log.info("received %s, shutting down", name)
            self.on_stop(name)
        elif signum == signal.SIGINT:
            _log.warning("second %s: exiting at once, without waiting for the shutdown", name)
            self.on_force(name)
        else:
            _log.info("received %s again; still shutting down", name)

    def detach(self) -> None:
        """Give the signals back to whatever handled them before :meth:`hold`/:meth:`attach`."""
        if self._loop is not None:
            for signum in self.signals:
                try:
                    self._loop.remove_signal_handler(signum)
                except (RuntimeError, ValueError):
                    pass
            self._loop = None
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        # uvloop ignores remove_signal_handler once its loop has stopped, which would leave its
        # handler swallowing the signal for the rest of the process: put the old one back by hand.
        while self._previous:
            signum, previous = self._previous.popitem()
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
