"""Service, MultiService and Application: the semantics of Twisted's ``twisted.application.service``."""

from __future__ import annotations

import asyncio
import copy
import os
import pickle

import pytest

from tapster.core import persist
from tapster.core.service import (
    Application,
    IProcess,
    IService,
    IServiceCollection,
    MultiService,
    Process,
    Service,
    loadApplication,
)


class Recorder(Service):
    """A service that logs each phase into a shared list, tagged with its name."""

    def __init__(self, name: str, log: list) -> None:
        self.setName(name)
        self.log = log

    def privilegedStartService(self) -> None:
        self.log.append(("privileged", self.name))
        Service.privilegedStartService(self)

    def startService(self) -> None:
        self.log.append(("start", self.name))
        Service.startService(self)

    def stopService(self):
        self.log.append(("stop", self.name))
        return Service.stopService(self)


class AsyncStop(Recorder):
    """A service whose stopService is a coroutine function that finishes a little later."""

    async def stopService(self):  # type: ignore[override]
        self.log.append(("stop begins", self.name))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        Service.stopService(self)
        self.log.append(("stop ends", self.name))


class FutureStop(Recorder):
    """A service whose stopService returns a future completed by a loop callback."""

    def stopService(self):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def finish() -> None:
            Service.stopService(self)
            self.log.append(("stop ends", self.name))
            fut.set_result("done")

        self.log.append(("stop begins", self.name))
        loop.call_later(0.01, finish)
        return fut


# -- names and parents ----------------------------------------------------------


def test_set_name_without_parent():
    s = Service()
    s.setName("hello")
    assert s.name == "hello"


def test_set_name_with_a_parent_raises_runtime_error():
    s = Service()
    s.setServiceParent(MultiService())
    with pytest.raises(RuntimeError):
        s.setName("late")
    assert s.name is None


def test_set_service_parent_adds_to_the_collection():
    s = Service()
    p = MultiService()
    s.setServiceParent(p)
    assert list(p) == [s]
    assert s.parent is p
    assert len(p) == 1


def test_named_child_is_found_by_name():
    s = Service()
    s.setName("hello")
    p = MultiService()
    s.setServiceParent(p)
    assert p.getServiceNamed("hello") is s
    assert p.namedServices == {"hello": s}


def test_get_service_named_unknown_raises_key_error():
    with pytest.raises(KeyError):
        MultiService().getServiceNamed("nobody")


def test_unnamed_children_are_not_in_named_services():
    p = MultiService()
    Service().setServiceParent(p)
    Service().setServiceParent(p)
    assert len(p) == 2
    assert p.namedServices == {}


def test_duplicate_child_name_raises():
    p = MultiService()
    first = Service()
    first.setName("twin")
    first.setServiceParent(p)
    second = Service()
    second.setName("twin")
    with pytest.raises(RuntimeError, match="twin"):
        second.setServiceParent(p)
    assert list(p) == [first]
    assert p.getServiceNamed("twin") is first


def test_failed_add_leaves_the_service_without_a_parent():
    p = MultiService()
    a, b = Service(), Service()
    a.setName("x")
    b.setName("x")
    a.setServiceParent(p)
    with pytest.raises(RuntimeError):
        b.setServiceParent(p)
    assert b.parent is None
    b.setName("y")  # allowed again: it has no parent
    b.setServiceParent(p)
    assert p.getServiceNamed("y") is b


def test_duplicate_name_via_add_service_raises():
    p = MultiService()
    a, b = Service(), Service()
    a.setName("dup")
    b.setName("dup")
    p.addService(a)
    with pytest.raises(RuntimeError):
        p.addService(b)
    assert list(p) == [a]


def test_disown_service_parent_removes_the_child():
    s = Service()
    s.setName("gone")
    p = MultiService()
    s.setServiceParent(p)
    assert s.disownServiceParent() is None
    assert list(p) == []
    assert p.namedServices == {}
    assert s.parent is None


def test_disown_without_parent_raises():
    with pytest.raises(RuntimeError):
        Service().disownServiceParent()


def test_reparenting_leaves_the_old_parent():
    s = Service()
    s.setName("mover")
    old, new = MultiService(), MultiService()
    s.setServiceParent(old)
    s.setServiceParent(new)
    assert s.parent is new
    assert list(old) == []
    assert old.namedServices == {}
    assert list(new) == [s]
    assert new.getServiceNamed("mover") is s


def test_iteration_keeps_insertion_order():
    p = MultiService()
    children = [Service() for _ in range(5)]
    for i, c in enumerate(children):
        c.setName(f"c{i}")
        c.setServiceParent(p)
    assert list(p) == children
    children[2].disownServiceParent()
    assert list(p) == children[:2] + children[3:]


def test_application_can_be_a_parent():
    app = Application("app")
    s = Service()
    s.setServiceParent(app)
    assert s.parent is app
    assert list(IServiceCollection(app)) == [s]


# -- running ---------------------------------------------------------------------


def test_service_running_flag():
    s = Service()
    assert not s.running
    s.startService()
    assert s.running
    assert s.stopService() is None
    assert not s.running


def test_start_phases_reach_children_in_order_and_stop_in_reverse():
    log: list = []
    p = MultiService()
    for name in ("a", "b", "c"):
        Recorder(name, log).setServiceParent(p)
    p.privilegedStartService()
    assert log == [("privileged", "a"), ("privileged", "b"), ("privileged", "c")]
    assert not p.running  # the privileged phase does not mark anything running
    log.clear()
    p.startService()
    assert log == [("start", "a"), ("start", "b"), ("start", "c")]
    assert p.running and all(c.running for c in p)
    log.clear()
    assert p.stopService() is None  # every child stopped synchronously
    assert log == [("stop", "c"), ("stop", "b"), ("stop", "a")]
    assert not p.running and not any(c.running for c in p)


def test_nested_collections_start_depth_first():
    log: list = []
    root = MultiService()
    Recorder("a", log).setServiceParent(root)
    inner = MultiService()
    inner.setServiceParent(root)
    Recorder("b", log).setServiceParent(inner)
    Recorder("c", log).setServiceParent(root)
    root.startService()
    assert log == [("start", "a"), ("start", "b"), ("start", "c")]
    log.clear()
    assert root.stopService() is None
    assert log == [("stop", "c"), ("stop", "b"), ("stop", "a")]


def test_a_child_failing_to_stop_does_not_keep_the_others_running():
    log: list = []

    class Broken(Recorder):
        def stopService(self):
            Recorder.stopService(self)
            raise RuntimeError("cannot stop")

    p = MultiService()
    Recorder("a", log).setServiceParent(p)
    Broken("b", log).setServiceParent(p)
    Recorder("c", log).setServiceParent(p)
    p.startService()
    log.clear()
    with pytest.raises(RuntimeError, match="cannot stop"):
        p.stopService()  # raised once every child has been stopped
    assert log == [("stop", "c"), ("stop", "b"), ("stop", "a")]
    assert not any(c.running for c in p)
    assert not p.running


def test_child_added_to_running_collection_is_started_at_once():
    log: list = []
    p = MultiService()
    p.startService()
    child = Recorder("late", log)
    child.setServiceParent(p)
    assert log == [("privileged", "late"), ("start", "late")]
    assert child.running


def test_child_added_to_stopped_collection_is_not_started():
    log: list = []
    p = MultiService()
    child = Recorder("idle", log)
    child.setServiceParent(p)
    assert log == []
    assert not child.running


def test_removing_from_running_collection_stops_the_child():
    log: list = []
    p = MultiService()
    child = Recorder("leaver", log)
    child.setServiceParent(p)
    p.startService()
    log.clear()
    assert child.disownServiceParent() is None
    assert log == [("stop", "leaver")]
    assert not child.running


def test_removing_from_stopped_collection_does_not_stop():
    log: list = []
    p = MultiService()
    child = Recorder("x", log)
    child.setServiceParent(p)
    child.disownServiceParent()
    assert log == []


def test_stop_with_async_child_returns_an_awaitable_outside_a_loop():
    log: list = []
    p = MultiService()
    Recorder("a", log).setServiceParent(p)
    AsyncStop("b", log).setServiceParent(p)
    Recorder("c", log).setServiceParent(p)
    p.startService()
    log.clear()
    result = p.stopService()
    assert result is not None
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_await(result))
    finally:
        loop.close()
    assert not any(c.running for c in p)
    assert not p.running
    assert log[0] == ("stop", "c")
    assert ("stop ends", "b") in log
    assert log.index(("stop begins", "b")) < log.index(("stop ends", "b"))
    assert ("stop", "a") in log


def test_stop_with_future_child_is_awaited_on_a_running_loop():
    log: list = []
    p = MultiService()
    Recorder("a", log).setServiceParent(p)
    FutureStop("slow", log).setServiceParent(p)

    async def scenario() -> object:
        p.startService()
        log.clear()
        result = p.stopService()
        assert result is not None
        # The synchronous child is already down; the slow one is not yet.
        assert not p.getServiceNamed("a").running
        assert p.getServiceNamed("slow").running
        return await result

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert not any(c.running for c in p)
    assert log == [("stop begins", "slow"), ("stop", "a"), ("stop ends", "slow")]


def test_a_failing_async_stop_neither_hides_nor_cuts_short_the_others(caplog):
    log: list = []

    class BrokenAsync(Recorder):
        async def stopService(self):  # type: ignore[override]
            Service.stopService(self)
            raise RuntimeError("async stop failed")

    p = MultiService()
    AsyncStop("a", log).setServiceParent(p)
    BrokenAsync("b", log).setServiceParent(p)
    AsyncStop("c", log).setServiceParent(p)
    BrokenAsync("d", log).setServiceParent(p)
    p.startService()
    result = p.stopService()
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level("ERROR", logger="tapster.service"):
            with pytest.raises(RuntimeError, match="async stop failed"):
                loop.run_until_complete(_await(result))
    finally:
        loop.close()
    # Raised only after every child finished stopping; the second failure is logged.
    assert not any(c.running for c in p)
    assert ("stop ends", "a") in log and ("stop ends", "c") in log
    assert "async stop failed" in caplog.text


def test_nested_async_stop_propagates_to_the_root():
    log: list = []
    root = MultiService()
    inner = MultiService()
    inner.setServiceParent(root)
    AsyncStop("deep", log).setServiceParent(inner)
    Recorder("top", log).setServiceParent(root)
    root.startService()
    result = root.stopService()
    assert result is not None
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_await(result))
    finally:
        loop.close()
    assert not root.getServiceNamed("top").running
    assert not inner.getServiceNamed("deep").running


def test_disown_from_running_parent_returns_the_child_stop_awaitable():
    log: list = []
    p = MultiService()
    child = AsyncStop("a", log)
    child.setServiceParent(p)
    p.startService()
    result = child.disownServiceParent()
    assert result is not None
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_await(result))
    finally:
        loop.close()
    assert not child.running
    assert child.parent is None


async def _await(awaitable):
    return await awaitable


# -- pickling --------------------------------------------------------------------


def test_copy_does_not_copy_running():
    s = Service()
    s.startService()
    s2 = copy.copy(s)
    assert s.running
    assert not s2.running


def test_pickled_tree_keeps_parents_and_names_but_not_running():
    app = Application("tree", uid=1000, gid=1000)
    inner = MultiService()
    inner.setName("inner")
    inner.setServiceParent(app)
    leaf = Service()
    leaf.setName("leaf")
    leaf.setServiceParent(inner)
    other = Service()
    other.setServiceParent(app)
    app.startService()
    assert leaf.running

    loaded = pickle.loads(pickle.dumps(app))

    assert isinstance(loaded, Application)
    assert loaded.name == "tree" and loaded.uid == 1000 and loaded.gid == 1000
    new_inner = loaded.getServiceNamed("inner")
    new_leaf = new_inner.getServiceNamed("leaf")
    assert new_inner.parent is loaded
    assert new_leaf.parent is new_inner
    assert next(iter(loaded)) is new_inner  # services list and namedServices share objects
    assert list(new_inner) == [new_leaf]
    assert list(loaded)[1].parent is loaded
    for svc in (loaded, new_inner, new_leaf, list(loaded)[1]):
        assert not svc.running
        assert "running" not in svc.__dict__
    # The original is untouched by pickling.
    assert app.running and leaf.running


def test_application_drops_volatile_attributes_when_pickled():
    app = Application("vol")
    app._v_cache = object()  # would not even pickle
    app.kept = 42
    loaded = pickle.loads(pickle.dumps(app))
    assert loaded.kept == 42
    assert not hasattr(loaded, "_v_cache")


def test_loaded_tree_can_start_again():
    log: list = []
    app = Application("again")
    Recorder("a", log).setServiceParent(app)
    loaded = pickle.loads(pickle.dumps(app))
    loaded.privilegedStartService()
    loaded.startService()
    assert loaded.getServiceNamed("a").running
    assert loaded.stopService() is None


# -- interfaces ------------------------------------------------------------------


def test_iservice_adapts_an_application_to_itself():
    app = Application("x")
    assert IService(app) is app
    assert IServiceCollection(app) is app
    assert IProcess(app) is app


def test_iservice_of_a_plain_object_raises_type_error():
    with pytest.raises(TypeError):
        IService(object())
    with pytest.raises(TypeError):
        IServiceCollection(Service())


def test_interface_adaptation_default_is_returned_when_not_provided():
    marker = object()
    assert IService(object(), marker) is marker
    assert IService(object(), None) is None


def test_isinstance_checks_structure():
    assert isinstance(Service(), IService)
    assert isinstance(MultiService(), IServiceCollection)
    assert not isinstance(Service(), IServiceCollection)
    assert isinstance(Process(), IProcess)

    class DuckService:
        def setName(self, name): ...
        def setServiceParent(self, parent): ...
        def disownServiceParent(self): ...
        def privilegedStartService(self): ...
        def startService(self): ...
        def stopService(self): ...

    duck = DuckService()
    assert IService(duck) is duck


# -- Application -----------------------------------------------------------------


def test_application_attributes():
    app = Application("hello")
    assert app.name == "hello"
    assert app.processName == "hello"
    assert app.uid is None and app.gid is None
    app2 = Application("hello", 5)
    assert IProcess(app2).uid == 5 and IProcess(app2).gid is None
    app3 = Application("hello", 5, 6)
    assert (app3.uid, app3.gid) == (5, 6)
    named = Application("named", "nobody", "nogroup")
    assert (named.uid, named.gid) == ("nobody", "nogroup")
    assert isinstance(app, MultiService)
    assert list(app) == []


def test_application_save_writes_name_tap_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = Application("hello", uid=7)
    child = Service()
    child.setName("child")
    child.setServiceParent(app)
    written = app.save()
    assert written == "hello.tap"
    assert sorted(os.listdir(tmp_path)) == ["hello.tap"]  # no temp file left behind
    loaded = persist.load(str(tmp_path / "hello.tap"))
    assert loaded.uid == 7
    assert loaded.getServiceNamed("child").parent is loaded


def test_application_save_with_tag(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = Application("hello")
    assert app.save("shutdown") == "hello-shutdown.tap"
    assert sorted(os.listdir(tmp_path)) == ["hello-shutdown.tap"]
    assert loadApplication(str(tmp_path / "hello-shutdown.tap")).name == "hello"


def test_application_save_replaces_existing_file_atomically(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello.tap").write_bytes(b"old contents")
    app = Application("hello")
    app.marker = "new"
    app.save()
    assert sorted(os.listdir(tmp_path)) == ["hello.tap"]
    assert loadApplication("hello.tap").marker == "new"


def test_application_save_while_running_writes_a_stopped_application(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = Application("live")
    Service().setServiceParent(app)
    app.startService()
    app.save()
    loaded = loadApplication("live.tap")
    assert not loaded.running
    assert not any(s.running for s in loaded)


def test_application_save_to_explicit_filename(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "sub"
    target.mkdir()
    app = Application("hello")
    path = app.save(filename=str(target / "custom.tap"))
    assert path == str(target / "custom.tap")
    assert os.listdir(tmp_path) == ["sub"]
    assert os.listdir(target) == ["custom.tap"]
