"""tapster.core.defer: Twisted's Deferred semantics, and Deferreds meeting asyncio."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from tapster.core import defer
from tapster.core.defer import (
    AlreadyCalledError,
    CancelledError,
    Deferred,
    DeferredList,
    FirstError,
    ensureDeferred,
    fail,
    gatherResults,
    inlineCallbacks,
    maybeDeferred,
    returnValue,
    succeed,
)
from tapster.core.errors import TapsterError
from tapster.core.failure import Failure
from tapster.core.testing import Clock


def result_of(d):
    out = []
    d.addBoth(out.append)
    assert out, f"{d!r} has not fired"
    return out[0]


def test_exports_and_exceptions():
    for name in defer.__all__:
        assert hasattr(defer, name), name
    assert issubclass(defer.TimeoutError, TapsterError) and defer.TimeoutError is not asyncio.TimeoutError
    assert issubclass(defer.NotACoroutineError, TypeError)


# -- the chain -----------------------------------------------------------------------


def test_callbacks_run_in_order_each_getting_the_previous_result():
    d = Deferred()
    seen = []
    d.addCallback(lambda r: r + 1).addCallback(lambda r, k: r * k, 10).addCallback(seen.append)
    assert not d.called and seen == []
    d.callback(1)
    assert d.called and seen == [20]
    assert d.result is None  # what the last callback returned


def test_callbacks_added_after_firing_run_at_once():
    d = succeed("x")
    assert result_of(d.addCallback(str.upper)) == "X"


def test_an_exception_in_a_callback_goes_to_the_next_errback_skipping_callbacks():
    d = Deferred()
    calls = []
    d.addCallback(lambda r: 1 / 0)
    d.addCallback(lambda r: calls.append("skipped"))
    d.addErrback(lambda f: (calls.append(f.type), "recovered")[1])
    d.addCallback(calls.append)
    d.callback(None)
    assert calls == [ZeroDivisionError, "recovered"]


def test_returning_a_failure_is_like_raising():
    d = succeed(1).addCallback(lambda r: Failure(ValueError("bad")))
    f = result_of(d)
    assert isinstance(f, Failure) and f.check(ValueError) and f.getErrorMessage() == "bad"


def test_errback_reraising_keeps_the_failure_going_and_trap_passes_others_on():
    d = fail(KeyError("k"))
    trapped = []
    d.addErrback(lambda f: f.trap(ValueError))  # not a ValueError: re-raised
    d.addErrback(lambda f: trapped.append(f.trap(KeyError)))
    assert trapped == [KeyError]


def test_addCallbacks_and_addBoth_and_their_arguments():
    seen = []
    succeed(1).addCallbacks(lambda r, a, b=0: seen.append(("cb", r, a, b)), lambda f: seen.append("eb"),
                            callbackArgs=(2,), callbackKeywords={"b": 3})
    fail(ValueError()).addCallbacks(lambda r: seen.append("cb"), lambda f, x: seen.append(("eb", f.type, x)),
                                    errbackArgs=("y",))
    succeed(5).addBoth(lambda r, z: seen.append(("both", r, z)), "z")
    fail(OSError()).addBoth(lambda r: seen.append(("both", type(r))))
    assert seen == [("cb", 1, 2, 3), ("eb", ValueError, "y"), ("both", 5, "z"), ("both", Failure)]


def test_errback_with_an_exception_or_the_current_one():
    d = Deferred()
    d.errback(RuntimeError("boom"))
    assert result_of(d).check(RuntimeError)
    d2 = Deferred()
    try:
        raise LookupError("current")
    except LookupError:
        d2.errback()
    f = result_of(d2)
    assert f.check(LookupError) and "LookupError: current" in f.getTraceback()


def test_firing_twice_raises_already_called():
    d = succeed(1)
    with pytest.raises(AlreadyCalledError):
        d.callback(2)
    with pytest.raises(AlreadyCalledError):
        d.errback(ValueError())


def test_callback_with_a_deferred_is_refused():
    with pytest.raises(TypeError):
        Deferred().callback(Deferred())


def test_a_callback_returning_a_deferred_waits_for_it_and_takes_its_result():
    inner = Deferred()
    outer = succeed(1).addCallback(lambda r: inner)
    after = []
    outer.addCallback(after.append)
    assert after == [] and "waiting on Deferred" in repr(outer)
    inner.callback("inner result")
    assert after == ["inner result"]
    assert inner.result is None  # consumed by the outer chain


def test_a_callback_returning_a_fired_deferred_continues_at_once_and_failures_chain_too():
    outer = succeed(1).addCallback(lambda r: succeed(r + 1))
    assert result_of(outer) == 2
    failing = succeed(1).addCallback(lambda r: fail(ValueError("inner")))
    assert result_of(failing).check(ValueError)


def test_returning_the_same_deferred_is_an_error():
    d = Deferred()
    d.addCallback(lambda r: d)
    d.callback(1)
    assert result_of(d).check(TypeError)


def test_chainDeferred_feeds_another():
    a, b = Deferred(), Deferred()
    a.chainDeferred(b)
    a.callback(7)
    assert result_of(b) == 7


def test_pause_holds_the_chain_until_unpause():
    d = Deferred()
    seen = []
    d.pause()
    d.addCallback(seen.append)
    d.callback(1)
    assert seen == []
    d.unpause()
    assert seen == [1]


def test_a_callback_adding_callbacks_to_its_own_deferred_runs_them_in_the_same_pass():
    d = Deferred()
    seen = []

    def first(r):
        d.addCallback(lambda r2: seen.append(("second", r2)))
        return r + 1

    d.addCallback(first)
    d.callback(1)
    assert seen == [("second", 2)]


# -- cancel -------------------------------------------------------------------------


def test_cancel_without_canceller_fails_with_cancelled_and_ignores_one_late_callback():
    d = Deferred()
    d.cancel()
    assert result_of(d).check(CancelledError)
    d.callback("late")  # the operation finished anyway: ignored once, as in Twisted
    with pytest.raises(AlreadyCalledError):
        d.callback("again")


def test_cancel_calls_the_canceller_which_may_fire_the_deferred_itself():
    calls = []
    d = Deferred(lambda d: (calls.append("cancelled"), d.callback("fallback")))
    d.cancel()
    assert calls == ["cancelled"] and result_of(d) == "fallback"
    d2 = Deferred(lambda d: calls.append("no fire"))
    d2.cancel()
    assert result_of(d2).check(CancelledError)


def test_cancel_of_a_fired_deferred_does_nothing_but_cancels_the_one_it_waits_on():
    d = succeed(1)
    d.cancel()
    assert result_of(d) == 1
    inner = Deferred()
    outer = succeed(1).addCallback(lambda r: inner)
    outer.cancel()
    assert result_of(inner) is None  # consumed by outer
    assert result_of(outer).check(CancelledError)


def test_addTimeout_turns_the_cancellation_into_a_timeout():
    clock = Clock()
    d = Deferred().addTimeout(5, clock)
    clock.advance(4.9)
    assert not d.called
    clock.advance(0.2)
    assert result_of(d).check(defer.TimeoutError)
    fine = Deferred().addTimeout(5, clock)
    fine.callback("in time")
    assert not clock.getDelayedCalls() or all(not c.active() for c in clock.getDelayedCalls())
    assert result_of(fine) == "in time"


# -- unhandled errors ---------------------------------------------------------------


def test_an_unhandled_failure_is_logged_when_the_deferred_is_collected(caplog):
    with caplog.at_level(logging.ERROR, logger="tapster.defer"):
        d = fail(ValueError("nobody handled me"))
        del d
        gc.collect()
    assert "Unhandled error in Deferred" in caplog.text and "nobody handled me" in caplog.text


def test_a_handled_failure_is_not_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="tapster.defer"):
        d = fail(ValueError("handled"))
        d.addErrback(lambda f: None)
        del d
        gc.collect()
    assert "Unhandled" not in caplog.text


# -- helpers -----------------------------------------------------------------------


def test_maybeDeferred_wraps_values_exceptions_failures_and_deferreds():
    assert result_of(maybeDeferred(lambda: 3)) == 3
    assert result_of(maybeDeferred(lambda: 1 / 0)).check(ZeroDivisionError)
    assert result_of(maybeDeferred(lambda: Failure(KeyError()))).check(KeyError)
    d = Deferred()
    assert maybeDeferred(lambda: d) is d


def test_DeferredList_collects_success_and_failure_pairs_in_order():
    a, b = Deferred(), Deferred()
    dl = DeferredList([a, b], consumeErrors=True)
    b.errback(ValueError("b"))
    assert not dl.called
    a.callback("a")
    (ok_a, res_a), (ok_b, res_b) = result_of(dl)
    assert (ok_a, res_a) == (True, "a") and ok_b is False and res_b.check(ValueError)
    assert result_of(b) is None  # consumed
    assert result_of(DeferredList([])) == []


def test_DeferredList_fire_on_one_callback_and_errback():
    a, b = Deferred(), Deferred()
    dl = DeferredList([a, b], fireOnOneCallback=True)
    b.callback("first")
    assert result_of(dl) == ("first", 1)
    c = Deferred()
    dl2 = DeferredList([Deferred(), c], fireOnOneErrback=True, consumeErrors=True)
    c.errback(KeyError("c"))
    f = result_of(dl2)
    assert f.check(FirstError) and f.value.index == 1 and f.value.subFailure.check(KeyError)


def test_gatherResults_and_its_first_error():
    assert result_of(gatherResults([succeed(1), succeed(2)])) == [1, 2]
    f = result_of(gatherResults([succeed(1), fail(OSError("x"))], consumeErrors=True))
    assert f.check(FirstError) and f.value.subFailure.check(OSError)


def test_cancelling_a_DeferredList_cancels_its_members():
    a, b = Deferred(), Deferred()
    dl = DeferredList([a, b], consumeErrors=True)
    dl.cancel()
    assert result_of(a) is None and result_of(b) is None  # their CancelledErrors were consumed by the list
    assert [ok for ok, _ in result_of(dl)] == [False, False]


def test_inlineCallbacks_waits_for_each_deferred():
    later = Deferred()

    @inlineCallbacks
    def work(x):
        a = yield succeed(x)
        b = yield later
        c = yield "plain value"
        try:
            yield fail(ValueError("caught inside"))
        except ValueError as e:
            d = str(e)
        return (a, b, c, d)

    result = work(1)
    assert not result.called
    later.callback(2)
    assert result_of(result) == (1, 2, "plain value", "caught inside")


def test_inlineCallbacks_returnValue_and_exceptions():
    @inlineCallbacks
    def old_style():
        yield succeed(None)
        returnValue("old")

    @inlineCallbacks
    def broken():
        yield succeed(None)
        raise KeyError("broken")

    assert result_of(old_style()) == "old"
    assert result_of(broken()).check(KeyError)
    with pytest.raises(TypeError):
        inlineCallbacks(lambda: 1)()


def test_cancelling_inlineCallbacks_cancels_what_it_waits_on():
    waiting = Deferred()

    @inlineCallbacks
    def work():
        yield waiting

    result = work()
    result.cancel()
    assert waiting.called and result_of(result).check(CancelledError)


# -- asyncio ----------------------------------------------------------------------------


def test_await_a_deferred_in_a_coroutine():
    async def main():
        loop = asyncio.get_running_loop()
        d = Deferred()
        loop.call_later(0.01, d.callback, "later")
        got = await d
        assert d.result is None  # consumed, as with asFuture
        now = await succeed("now")
        e = Deferred()
        loop.call_soon(e.errback, ValueError("async failure"))
        with pytest.raises(ValueError, match="async failure"):
            await e
        with pytest.raises(KeyError):
            await fail(KeyError())
        return got, now

    assert asyncio.run(main()) == ("later", "now")


def test_asFuture_and_fromFuture_and_their_cancellation():
    async def main():
        loop = asyncio.get_running_loop()
        d = Deferred()
        future = d.asFuture(loop)
        d.callback(5)
        assert await future == 5

        d2 = Deferred()
        seen = []
        d2.addErrback(lambda f: seen.append(f.type))
        f2 = d2.asFuture(loop)
        f2.cancel()
        await asyncio.sleep(0)
        assert seen == [CancelledError]

        f3 = loop.create_future()
        d3 = Deferred.fromFuture(f3)
        loop.call_soon(f3.set_result, "from future")
        await asyncio.sleep(0.01)
        assert result_of(d3) == "from future"

        f4 = loop.create_future()
        d4 = Deferred.fromFuture(f4)
        d4.cancel()
        assert f4.cancelled() and result_of(d4).check(CancelledError)
        await asyncio.sleep(0)  # the future's done callback finds d4 fired: nothing more happens

    asyncio.run(main())


def test_ensureDeferred_runs_a_coroutine_as_a_task():
    async def work(x):
        await asyncio.sleep(0)
        return x * 2

    async def failing():
        raise OSError("from coroutine")

    async def main():
        d = ensureDeferred(work(21))
        assert ensureDeferred(d) is d
        assert await d == 42
        f = Deferred.fromCoroutine(failing())
        with pytest.raises(OSError):
            await f
        assert await maybeDeferred(work, 2) == 4  # a coroutine function's result is run too

    asyncio.run(main())
    with pytest.raises(defer.NotACoroutineError):
        ensureDeferred(42)


def test_ensureDeferred_without_a_running_loop_uses_the_shared_reactor(shared_reactor, run_until):
    async def work():
        await asyncio.sleep(0.01)
        return "ran on the reactor"

    d = ensureDeferred(work())
    assert run_until(shared_reactor, lambda: d.called)
    assert result_of(d) == "ran on the reactor"


def test_a_multiservice_awaits_a_deferred_from_stopService():
    from tapster.core.service import MultiService, Service

    stopped = Deferred()

    class Slow(Service):
        def stopService(self):
            Service.stopService(self)
            return stopped

    parent = MultiService()
    Slow().setServiceParent(parent)
    parent.startService()

    async def main():
        pending = parent.stopService()
        asyncio.get_running_loop().call_later(0.01, stopped.callback, None)
        await pending

    asyncio.run(main())
    assert stopped.called
