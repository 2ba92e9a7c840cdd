"""Deferreds: Twisted's callback chains, awaitable on tapster's asyncio loop.

tapster's own code is written with asyncio futures and coroutines, but code
ported from Twisted calls ``endpoint.listen(f).addCallback(...)``,
``service.whenConnected().addErrback(...)`` and writes ``@inlineCallbacks``.
This module gives that code what it expects, with Twisted's documented
semantics:

* A :class:`Deferred` holds a chain of ``(callback, errback)`` pairs. It
  fires once, with :meth:`Deferred.callback` (a value) or
  :meth:`Deferred.errback` (a :class:`~tapster.core.failure.Failure`);
  firing twice raises :class:`AlreadyCalledError`.
* The current result runs down the chain: a :class:`Failure` goes to the
  next errback, anything else to the next callback. What a callback returns
  is the next result; a callback that raises makes the next result a
  Failure of that exception; a callback that returns a Failure also does.
* A callback that returns another Deferred pauses the chain until that one
  fires; its result then continues down this chain (and the inner
  Deferred's own result becomes None: it was consumed).
* Callbacks added after the Deferred fired run at once.
* :meth:`Deferred.cancel` calls the canceller given to the constructor; if
  that did not fire the Deferred, it errbacks with :class:`CancelledError`.
  A Deferred cancelled without a canceller ignores one later ``callback``.
* A Deferred garbage-collected while its result is a Failure that nobody
  handled logs ``Unhandled error in Deferred`` with the traceback, on the
  ``tapster.defer`` logger.

asyncio meets Deferreds in both directions:

* ``await d`` in a coroutine running on the loop waits for ``d`` and returns
  its result (or raises its failure's exception). As with Twisted's
  :meth:`Deferred.asFuture`, awaiting consumes the result: the Deferred's
  result becomes None afterwards.
* :meth:`Deferred.fromFuture` (a Deferred of an asyncio future),
  :meth:`Deferred.asFuture` (an asyncio future of a Deferred),
  :meth:`Deferred.fromCoroutine` and :func:`ensureDeferred` (a coroutine run
  as an asyncio task on the running loop, or the shared reactor's loop when
  none is running). Cancelling either side cancels the other.

A difference from Twisted on purpose: Twisted drives a coroutine itself, so
``ensureDeferred(coro)`` runs it at once up to its first wait and only
Deferreds can be awaited in it. tapster runs it as a real asyncio task (so
``asyncio.sleep``, ``asyncio.timeout`` and every asyncio library work in it);
on Python 3.12 and later the task starts eagerly, as Twisted's does, on 3.11
at the loop's next turn.

:func:`inlineCallbacks` (with :func:`returnValue` for old code) drives a
generator that yields Deferreds, synchronously as Twisted's does.
:func:`succeed`, :func:`fail`, :func:`maybeDeferred`, :class:`DeferredList`
and :func:`gatherResults` complete the set.
"""

from __future__ import annotations

import functools
import logging
import sys
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar, cast, overload

from tapster.core.errors import AlreadyCalledError, CancelledError, FirstError, NotACoroutineError
from tapster.core.errors import DeferredTimeoutError as TimeoutError  # Twisted's name: defer.TimeoutError
from tapster.core.failure import Failure

if TYPE_CHECKING:
    import asyncio

    from tapster.core.interfaces import IDelayedCall, IReactorTime

__all__ = [
    "Deferred",
    "DeferredList",
    "AlreadyCalledError",
    "CancelledError",
    "TimeoutError",
    "FirstError",
    "NotACoroutineError",
    "succeed",
    "fail",
    "maybeDeferred",
    "ensureDeferred",
    "gatherResults",
    "inlineCallbacks",
    "returnValue",
    "passthru",
    "SUCCESS",
    "FAILURE",
]

_log = logging.getLogger("tapster.defer")
_T = TypeVar("_T")
_NO_RESULT: Any = object()

SUCCESS = True
"""The first item of a :class:`DeferredList` result for a Deferred that succeeded."""
FAILURE = False
"""... and for one that failed."""


def passthru(result: _T) -> _T:
    """The callback that changes nothing: the missing half of a pair added by ``addCallback``/``addErrback``."""
    return result


class _Unhandled:
    """Held by a Deferred whose chain ended on a Failure; logs it if it is never handled.

    A separate object (not ``Deferred.__del__``) so that only Deferreds that
    actually end on a failure pay for a finaliser.
    """

    __slots__ = ("failure",)

    def __init__(self, failure: Failure) -> None:
        self.failure: Failure | None = failure

    def __del__(self) -> None:
        failure = self.failure
        if failure is not None:
            _log.error("Unhandled error in Deferred:\n%s", failure.getTraceback().rstrip())


_Call = tuple[Callable[..., object], tuple[object, ...], dict[str, object]]


class Deferred(Generic[_T]):
    """A result that is not there yet, with a chain of callbacks to run when it is (see the module)."""

    called = False
    paused = 0
    #: True while the chain runs (callbacks added then run in the same pass).
    _runningCallbacks = False
    _suppressAlreadyCalled = False
    _chainedTo: Deferred[Any] | None = None
    _unhandled: _Unhandled | None = None

    def __init__(self, canceller: Callable[[Deferred[_T]], None] | None = None) -> None:
        self.callbacks: deque[tuple[_Call, _Call]] = deque()
        self._canceller = canceller
        self.result: Any = _NO_RESULT

    # -- building the chain ---------------------------------------------------

    def addCallbacks(
        self,
        callback: Callable[..., object],
        errback: Callable[..., object] | None = None,
        callbackArgs: tuple[object, ...] = (),
        callbackKeywords: dict[str, object] | None = None,
        errbackArgs: tuple[object, ...] = (),
        errbackKeywords: dict[str, object] | None = None,
    ) -> Deferred[Any]:
        """Add a callback and an errback as one step of the chain; returns this Deferred."""
        self.callbacks.append((
            (callback, tuple(callbackArgs), dict(callbackKeywords or {})),
            (errback if errback is not None else passthru, tuple(errbackArgs), dict(errbackKeywords or {})),
        ))
        if self.called:
            self._runCallbacks()
        return self

    def addCallback(self, callback: Callable[..., object], *args: object, **kwargs: object) -> Deferred[Any]:
        """``callback(result, *args, **kwargs)`` when the result is a success; failures pass by."""
        return self.addCallbacks(callback, passthru, callbackArgs=args, callbackKeywords=kwargs)

    def addErrback(self, errback: Callable[..., object], *args: object, **kwargs: object) -> Deferred[Any]:
        """``errback(failure, *args, **kwargs)`` when the result is a Failure; successes pass by."""
        return self.addCallbacks(passthru, errback, errbackArgs=args, errbackKeywords=kwargs)

    def addBoth(self, callback: Callable[..., object], *args: object, **kwargs: object) -> Deferred[Any]:
        """``callback(result, ...)`` whatever the result is."""
        return self.addCallbacks(callback, callback, callbackArgs=args, callbackKeywords=kwargs,
                                 errbackArgs=args, errbackKeywords=kwargs)

    def chainDeferred(self, d: Deferred[Any]) -> Deferred[Any]:
        """Fire ``d`` with this chain's result at this point (``d``'s result is not fed back)."""
        d._chainedTo = self
        return self.addCallbacks(d.callback, d.errback)

    def addTimeout(self, timeout: float, clock: IReactorTime,
                   onTimeoutCancel: Callable[[object, float], object] | None = None) -> Deferred[_T]:
        """Cancel this Deferred if it has not fired ``timeout`` seconds from now on ``clock``.

        The :class:`CancelledError` of that cancellation becomes a
        :class:`TimeoutError`; ``onTimeoutCancel(result, timeout)``, if given,
        decides the result instead.
        """
        timedOut = False

        def timeItOut() -> None:
            nonlocal timedOut
            timedOut = True
            self.cancel()

        delayed: IDelayedCall = clock.callLater(timeout, timeItOut)

        def convert(result: object) -> object:
            if delayed.active():
                delayed.cancel()
            if not timedOut:
                return result
            if onTimeoutCancel is not None:
                return onTimeoutCancel(result, timeout)
            if isinstance(result, Failure) and result.check(CancelledError):
                return Failure(TimeoutError(f"Deferred timed out after {timeout} seconds"))
            return result

        self.addBoth(convert)
        return self

    # -- firing -------------------------------------------------------------

    def callback(self, result: _T | Failure) -> None:
        """Fire with ``result`` (a success, unless it is a Failure); raises AlreadyCalledError the second time."""
        if isinstance(result, Deferred):
            raise TypeError("a Deferred cannot be fired with another Deferred: return it from a callback instead")
        self._startRunCallbacks(result)

    def errback(self, fail: Failure | BaseException | None = None) -> None:
        """Fire with a failure: ``fail``, an exception, or (None) the exception being handled."""
        if fail is None:
            fail = Failure()
        elif not isinstance(fail, Failure):
            fail = Failure(fail)
        self._startRunCallbacks(fail)

    def _startRunCallbacks(self, result: object) -> None:
        if self.called:
            if self._suppressAlreadyCalled:
                self._suppressAlreadyCalled = False
                return
            raise AlreadyCalledError(f"{self!r} has already been fired")
        self.called = True
        self.result = result
        self._runCallbacks()

    def pause(self) -> None:
        """Hold the chain: callbacks wait until :meth:`unpause` (pauses nest)."""
        self.paused += 1

    def unpause(self) -> None:
        """Undo one :meth:`pause`; the chain runs on when none is left."""
        self.paused -= 1
        if not self.paused and self.called:
            self._runCallbacks()

    def cancel(self) -> None:
        """Give up on the result (see the module for the rules)."""
        if not self.called:
            canceller = self._canceller
            if canceller is not None:
                canceller(self)
            else:
                self._suppressAlreadyCalled = True
            if not self.called:
                self.errback(Failure(CancelledError()))
        elif isinstance(self.result, Deferred):  # waiting on a Deferred a callback returned
            self.result.cancel()

    # -- running the chain ----------------------------------------------------

    def _runCallbacks(self) -> None:
        if self._runningCallbacks:
            return  # a callback added a callback: the loop below picks it up
        while self.callbacks and not self.paused and not isinstance(self.result, Deferred):
            call, eargs = self.callbacks.popleft()
            function, args, kwargs = eargs if isinstance(self.result, Failure) else call
            if function is passthru:
                continue
            self._runningCallbacks = True
            try:
                current = function(self.result, *args, **kwargs)
                if current is self:
                    raise TypeError(f"callback {function!r} returned the Deferred it was added to")
            except BaseException:
                current = Failure()
            finally:
                self._runningCallbacks = False
            self.result = current
            if isinstance(current, Deferred):
                self._waitFor(current)
        self._noteUnhandled()

    def _waitFor(self, inner: Deferred[Any]) -> None:
        """A callback returned ``inner``: take its result now if it has one, else wait for it."""
        if inner.called and not inner.paused and not isinstance(inner.result, Deferred) and not inner.callbacks:
            self.result, inner.result = inner.result, None  # consumed: the inner chain is over
            if inner._unhandled is not None:
                inner._unhandled.failure = None
                inner._unhandled = None
            return
        if inner._chainedTo is not None:
            raise TypeError(f"{inner!r} is already chained to another Deferred; a Deferred can feed only one")
        inner._chainedTo = self

        def resume(result: object) -> None:
            inner._chainedTo = None
            self.result = result
            self._runCallbacks()

        inner.addBoth(resume)

    def _noteUnhandled(self) -> None:
        if isinstance(self.result, Failure) and not self.callbacks and not self.paused:
            if self._unhandled is None:
                self._unhandled = _Unhandled(self.result)
            else:
                self._unhandled.failure = self.result
        elif self._unhandled is not None:
            self._unhandled.failure = None
            self._unhandled = None

    # -- asyncio ------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, _T]:
        """``await d`` on the asyncio loop: the result, or the failure's exception raised (both consumed)."""
        if self.called and not self.paused and not isinstance(self.result, Deferred) and not self.callbacks:
            result, self.result = self.result, None
            self._noteUnhandled()
            if isinstance(result, Failure):
                result.raiseException()
            return cast("_T", result)
        import asyncio

        value: _T = yield from self.asFuture(asyncio.get_running_loop()).__await__()
        return value

    def asFuture(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[_T]:
        """An asyncio future on ``loop`` with this Deferred's result; cancelling it cancels this Deferred.

        The result is consumed: this Deferred's result is None afterwards.
        """
        future: asyncio.Future[_T] = loop.create_future()

        def succeeded(result: _T) -> None:
            if not future.cancelled():
                future.set_result(result)

        def failed(failure: Failure) -> None:
            if not future.cancelled():
                future.set_exception(failure.value)

        def cancelled(f: asyncio.Future[_T]) -> None:
            if f.cancelled():
                self.cancel()

        self.addCallbacks(succeeded, failed)
        future.add_done_callback(cancelled)
        return future

    @classmethod
    def fromFuture(cls, future: asyncio.Future[_T]) -> Deferred[_T]:
        """A Deferred that fires with ``future``'s outcome; cancelling it cancels the future."""

        def cancel(d: Deferred[_T]) -> None:
            future.cancel()

        d: Deferred[_T] = cls(cancel)

        def adapt(f: asyncio.Future[_T]) -> None:
            if d.called:  # cancelled already
                return
            try:
                result: object = f.result()
            except BaseException:
                result = Failure()
            d._startRunCallbacks(result)

        future.add_done_callback(adapt)
        return d

    @classmethod
    def fromCoroutine(cls, coro: Coroutine[Any, Any, _T]) -> Deferred[_T]:
        """Run ``coro`` as an asyncio task and return a Deferred of its result (see the module)."""
        if not isinstance(coro, types.CoroutineType):
            raise NotACoroutineError(f"{coro!r} is not a coroutine")
        return cls.fromFuture(_task(coro))

    def __repr__(self) -> str:
        where = f"<{type(self).__name__} at 0x{id(self):x}"
        if isinstance(self.result, Deferred):
            return f"{where} waiting on Deferred at 0x{id(self.result):x}>"
        if self.called:
            return f"{where} current result: {self.result!r}>"
        return f"{where}>"

    __str__ = __repr__


def _task(coro: Coroutine[Any, Any, _T]) -> asyncio.Future[_T]:
    """``coro`` as a task on the running loop, else on the shared reactor's loop (eager where Python can)."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        from tapster.core import reactor

        loop = reactor.getReactor().loop
    if sys.version_info >= (3, 12) and loop.is_running():
        return asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg, unused-ignore]  # 3.12+
    return loop.create_task(coro)


def succeed(result: _T) -> Deferred[_T]:
    """A Deferred already fired with ``result``."""
    d: Deferred[_T] = Deferred()
    d.callback(result)
    return d


def fail(result: Failure | BaseException | None = None) -> Deferred[Any]:
    """A Deferred already failed with ``result`` (a Failure, an exception, or the one being handled)."""
    d: Deferred[Any] = Deferred()
    d.errback(result)
    return d


def maybeDeferred(f: Callable[..., object], *args: object, **kwargs: object) -> Deferred[Any]:
    """Call ``f`` and return a Deferred of what it gave: its Deferred, a coroutine run, a value, or its exception."""
    try:
        result = f(*args, **kwargs)
    except BaseException:
        return fail(Failure())
    if isinstance(result, Deferred):
        return result
    if isinstance(result, Failure):
        return fail(result)
    if isinstance(result, types.CoroutineType):
        return Deferred.fromCoroutine(result)
    return succeed(result)


@overload
def ensureDeferred(coro: Deferred[_T]) -> Deferred[_T]: ...
@overload
def ensureDeferred(coro: Awaitable[_T]) -> Deferred[_T]: ...
def ensureDeferred(coro: Awaitable[_T]) -> Deferred[_T]:
    """A Deferred of ``coro``: a Deferred is returned as it is, a coroutine or asyncio future is run/adapted."""
    if isinstance(coro, Deferred):
        return coro
    if isinstance(coro, types.CoroutineType):
        return Deferred.fromCoroutine(coro)
    import asyncio

    if asyncio.isfuture(coro):
        return Deferred.fromFuture(coro)
    raise NotACoroutineError(f"{coro!r} is not a coroutine or a Deferred")


class DeferredList(Deferred[Any]):
    """A Deferred of several: fires with ``[(success, result), ...]`` in the order given.

    ``fireOnOneCallback``: fire with ``(result, index)`` at the first success;
    ``fireOnOneErrback``: fail with :class:`FirstError` at the first failure;
    ``consumeErrors``: the failures stop here (the Deferreds in the list end
    with None instead, and log nothing). Cancelling the list cancels every
    Deferred in it that has not fired.
    """

    def __init__(self, deferredList: Iterable[Deferred[Any]], fireOnOneCallback: bool = False,
                 fireOnOneErrback: bool = False, consumeErrors: bool = False) -> None:
        self._deferredList = list(deferredList)
        self.resultList: list[tuple[bool, object] | None] = [None] * len(self._deferredList)
        self.fireOnOneCallback = fireOnOneCallback
        self.fireOnOneErrback = fireOnOneErrback
        self.consumeErrors = consumeErrors
        self.finishedCount = 0
        super().__init__(lambda _: self._cancelList())
        if not self._deferredList and not fireOnOneCallback:
            self.callback([])
        for index, deferred in enumerate(self._deferredList):
            deferred.addCallbacks(self._cbDeferred, self._cbDeferred,
                                  callbackArgs=(index, SUCCESS), errbackArgs=(index, FAILURE))

    def _cbDeferred(self, result: object, index: int, succeeded: bool) -> object:
        self.resultList[index] = (succeeded, result)
        self.finishedCount += 1
        if not self.called:
            if succeeded == SUCCESS and self.fireOnOneCallback:
                self.callback((result, index))
            elif succeeded == FAILURE and self.fireOnOneErrback:
                self.errback(Failure(FirstError(cast("Failure", result), index)))
            elif self.finishedCount == len(self.resultList):
                self.callback(self.resultList)
        if succeeded == FAILURE and self.consumeErrors:
            return None
        return result

    def _cancelList(self) -> None:
        for deferred in self._deferredList:
            deferred.cancel()


def gatherResults(deferredList: Iterable[Deferred[Any]], consumeErrors: bool = False) -> Deferred[list[Any]]:
    """A Deferred of the list of the results, in order; fails with :class:`FirstError` at the first failure."""
    d = DeferredList(deferredList, fireOnOneErrback=True, consumeErrors=consumeErrors)
    d.addCallback(lambda results: [outcome[1] for outcome in results])
    return d


# -- inlineCallbacks ---------------------------------------------------------------


class _DefGen_Return(BaseException):  # Twisted's name, seen in tracebacks
    def __init__(self, value: object) -> None:
        super().__init__(value)
        self.value = value


def returnValue(val: object) -> NoReturn:
    """Return ``val`` from an :func:`inlineCallbacks` generator (old code; a plain ``return val`` is the same)."""
    raise _DefGen_Return(val)


def inlineCallbacks(
    f: Callable[..., Generator[Any, Any, _T]],
) -> Callable[..., Deferred[_T]]:
    """Decorate a generator function: each ``yield d`` waits for Deferred ``d`` and evaluates to its result.

    A failed Deferred raises its exception at the ``yield``; the generator's
    ``return value`` fires the returned Deferred. Values that are not
    Deferreds come straight back. Cancelling the returned Deferred cancels
    the Deferred the generator is waiting on (the generator sees
    :class:`CancelledError` there, and may catch it).
    """

    @functools.wraps(f)
    def unwindGenerator(*args: object, **kwargs: object) -> Deferred[_T]:
        try:
            gen = f(*args, **kwargs)
        except _DefGen_Return:
            raise TypeError(f"inlineCallbacks requires {f!r} to produce a generator; returnValue() "
                            "was called outside a generator") from None
        if not isinstance(gen, types.GeneratorType):
            raise TypeError(f"inlineCallbacks requires {f!r} to produce a generator; instead it returned {gen!r}")
        return _drive(gen)

    return unwindGenerator


def _drive(gen: Generator[Any, Any, _T]) -> Deferred[_T]:
    waiting: list[Deferred[Any] | None] = [None]

    def cancel(_: Deferred[_T]) -> None:
        inner = waiting[0]
        if inner is not None:
            inner.cancel()

    result: Deferred[_T] = Deferred(cancel)

    def step(value: object) -> None:
        while True:
            waiting[0] = None
            try:
                if isinstance(value, Failure):
                    yielded = gen.throw(value.value.with_traceback(value.tb))
                else:
                    yielded = gen.send(value)
            except StopIteration as e:
                if not result.called:
                    result.callback(e.value)
                return
            except _DefGen_Return as e:
                if not result.called:
                    result.callback(cast("_T", e.value))
                return
            except BaseException:
                if not result.called:
                    result.errback(Failure())
                return
            if not isinstance(yielded, Deferred):
                value = yielded
                continue
            # ``yielded`` may fire during addBoth (then the loop goes on here) or later (then
            # got() steps the generator from its own call). ``outcome[0]`` says which.
            outcome: list[object] = [_NO_RESULT, True]

            def got(r: object, outcome: list[object] = outcome) -> None:
                if outcome[1]:
                    outcome[0] = r
                else:
                    step(r)

            waiting[0] = yielded
            yielded.addBoth(got)
            outcome[1] = False
            if outcome[0] is _NO_RESULT:
                return  # step() runs again when ``yielded`` fires
            value = outcome[0]

    step(None)
    return result
