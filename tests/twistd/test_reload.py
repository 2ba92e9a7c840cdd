"""The reload diff: what is kept, replaced, stopped and started, and that a failure changes nothing."""

from __future__ import annotations

import pytest

from tapster.core.service import Application, Service
from tapster.twistd.reload import Reloader, ReloadError


class Setting(Service):
    """A service with one configuration value, recording its starts and stops."""

    def __init__(self, name: str, value: str, fail: bool = False) -> None:
        self.setName(name)
        self.value = value
        self.fail = fail
        self.events: list[str] = []

    def startService(self) -> None:
        if self.fail:
            raise RuntimeError(f"{self.name} refuses to start")
        Service.startService(self)
        self.events.append("start")

    def stopService(self) -> None:
        Service.stopService(self)
        self.events.append("stop")

    def __getstate__(self) -> dict[str, object]:
        state = Service.__getstate__(self)
        state.pop("events", None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.events = []


def app_of(*services: Setting) -> Application:
    app = Application("reloading")
    for s in services:
        s.setServiceParent(app)
    return app


class Files:
    """Stands in for the application file: each load builds the tree the "file" now describes."""

    def __init__(self, *spec: tuple[str, str]) -> None:
        self.spec = list(spec)
        self.broken = False

    def load(self) -> Application:
        if self.broken:
            raise SyntaxError("invalid syntax (app.tac, line 3)")
        return app_of(*(Setting(n, v, fail=v == "FAIL") for n, v in self.spec))


def running(files: Files) -> tuple[Application, Reloader]:
    app = files.load()
    reloader = Reloader(app, files.load, "app.tac")
    app.privilegedStartService()
    app.startService()
    return app, reloader


def test_unchanged_services_keep_running_and_keep_live_changes() -> None:
    files = Files(("a", "1"), ("b", "2"), ("c", "3"))
    app, reloader = running(files)
    a, b, c = app.services
    a.live = "set in the shell"  # a change made while it runs
    files.spec = [("a", "1"), ("b", "two"), ("d", "4")]
    result = reloader.reload()
    assert (result.kept, result.replaced, result.stopped, result.started) == (["'a'"], ["'b'"], ["'c'"], ["'d'"])
    assert app.getServiceNamed("a") is a and a.live == "set in the shell" and a.events == ["start"]
    new_b = app.getServiceNamed("b")
    assert new_b is not b and new_b.value == "two" and new_b.running and new_b.parent is app
    assert b.events == ["start", "stop"] and b.parent is None and not b.running
    assert c.events == ["start", "stop"] and "c" not in app.namedServices
    assert [s.name for s in app.services] == ["a", "b", "d"]  # a replacement takes the old one's place
    # A second reload compares with what the last one loaded: nothing changes now.
    again = reloader.reload()
    assert again.kept == ["'a'", "'b'", "'d'"] and not (again.replaced or again.started or again.stopped)


def test_a_service_changed_live_but_not_in_the_file_is_kept_as_it_runs() -> None:
    files = Files(("a", "1"))
    app, reloader = running(files)
    (a,) = app.services
    a.value = "changed live"  # the file still says "1": the running one wins
    assert reloader.reload().kept == ["'a'"] and app.getServiceNamed("a").value == "changed live"
    files.spec = [("a", "from the file")]  # the file changed it: the file wins
    reloader.reload()
    assert app.getServiceNamed("a").value == "from the file"


def test_a_broken_file_changes_nothing() -> None:
    files = Files(("a", "1"), ("b", "2"))
    app, reloader = running(files)
    before = list(app.services)
    files.broken = True
    with pytest.raises(ReloadError, match=r"reloading app\.tac failed: SyntaxError: invalid syntax .*still serving"):
        reloader.reload()
    assert app.services == before and all(s.running and s.events == ["start"] for s in before)


def test_a_service_whose_start_raises_undoes_the_whole_reload() -> None:
    files = Files(("a", "1"), ("b", "2"))
    app, reloader = running(files)
    a, b = app.services
    files.spec = [("a", "one"), ("b", "2"), ("new", "x"), ("z", "FAIL")]
    with pytest.raises(ReloadError, match="z refuses to start"):
        reloader.reload()
    assert app.services == [a, b] and app.namedServices == {"a": a, "b": b}
    assert a.running and b.running and a.events == ["start"] and a.value == "1"
    files.spec = [("a", "one"), ("b", "2")]  # fixed: the next reload works, and compares with the first load
    assert reloader.reload().replaced == ["'a'"]


def test_settings_of_the_application_itself_need_a_restart() -> None:
    files = Files(("a", "1"))
    _, reloader = running(files)

    def with_user() -> Application:
        new = files.load()
        new.uid = 1234
        return new

    reloader.load = with_user
    assert reloader.reload().notes == ["uid changed in the file: it takes effect at the next restart"]


def test_a_non_application_is_refused() -> None:
    files = Files(("a", "1"))
    _, reloader = running(files)
    reloader.load = lambda: Service()
    with pytest.raises(ReloadError, match="gave a Service, not an application"):
        reloader.reload()


def test_a_service_added_live_is_not_the_files_and_stays() -> None:
    files = Files(("a", "1"))
    app, reloader = running(files)
    live = Setting("live", "added in the shell")
    live.setServiceParent(app)  # as the console's application.listenTCP or setServiceParent does
    files.spec = [("a", "changed")]
    result = reloader.reload()
    assert result.replaced == ["'a'"] and result.stopped == []
    assert result.notes == ["1 service added live (not in the file) kept as they run"]
    assert app.getServiceNamed("live") is live and live.running and live.events == ["start"]
    files.spec = []  # the file drops what it had; the live one still stays
    assert reloader.reload().stopped == ["'a'"] and [s.name for s in app.services] == ["live"]
