"""The componentized Application, from Twisted's documented semantics.

Twisted's ``Application(name)`` is a ``Componentized`` carrying a MultiService,
a Process and a ``sob.Persistent``; code reaches each by adapting
(``IService(app)``, ``IPersistable(app)``...) and stores more with
``setComponent``. ``Persistent.save(tag)`` writes ``<name>-<tag>.<ext>``,
``save()`` writes ``<name>.<ext>``, ``save(filename=f)`` writes ``f``;
``setStyle`` chooses the format.
"""

from __future__ import annotations

import logging
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tapster.core import persist, service
from tapster.core.errors import PersistError
from tapster.core.internet import TCPServer
from tapster.core.persist import IPersistable, Persistent
from tapster.core.protocol import Factory
from tapster.core.service import (
    Application,
    Componentized,
    IProcess,
    IService,
    IServiceCollection,
    MultiService,
    Process,
    implementer,
)
from tests.e2e._e2e import command, free_port, wait_for_port

FORMATS = [("pickle", "tap"), ("source", "tas"), ("xml", "tax")]


class IGreeting:
    """A marker interface of this test (components are keyed by its dotted path only)."""


class IOther:
    """Another one."""


class IVolatile:
    """An interface whose components hold process state: never saved."""

    transientComponent = True


@implementer(IService)
class _Declared:
    """Declares IService without deriving from tapster's bases."""

    def setName(self, name: str) -> None: ...
    def setServiceParent(self, parent: Any) -> None: ...
    def disownServiceParent(self) -> None: ...
    def privilegedStartService(self) -> None: ...
    def startService(self) -> None: ...
    def stopService(self) -> None: ...


class _OpenThing:
    """A component with an open file: declared transient."""

    transientComponent = True

    def __init__(self, path: Path) -> None:
        self.file = path.open("w")


def _greeting(motto: str = "kept") -> Factory:
    component = Factory()
    component.motto = motto  # type: ignore[attr-defined]
    return component


# -- Componentized, as Twisted's ---------------------------------------------------------


def test_set_get_and_unset_a_component() -> None:
    app = Application("demo")
    component = object()
    assert app.getComponent(IGreeting) is None
    assert app.getComponent(IGreeting, "fallback") == "fallback"
    app.setComponent(IGreeting, component)
    assert app.getComponent(IGreeting) is component
    app.setComponent(IGreeting, "replaced")
    assert app.getComponent(IGreeting) == "replaced"
    app.unsetComponent(IGreeting)
    assert app.getComponent(IGreeting) is None
    with pytest.raises(KeyError):
        app.unsetComponent(IGreeting)


def test_components_are_keyed_by_the_interface_path() -> None:
    app = Application("demo")
    app.setComponent(IGreeting, 1)
    assert app._adapterCache == {f"{__name__}.IGreeting": 1}


def test_adapting_returns_the_component_else_the_application_itself() -> None:
    app = Application("demo")
    assert IService(app) is app
    assert IServiceCollection(app) is app
    assert IProcess(app) is app
    persistable = IPersistable(app)  # Twisted's sob.Persistent of the application
    assert isinstance(persistable, Persistent) and persistable.original is app
    assert (persistable.name, persistable.style) == ("demo", "pickle")
    app.setStyle("xml")
    assert persistable.style == "xml"  # one style, wherever it is set
    other = MultiService()
    app.setComponent(IService, other)
    assert IService(app) is other  # the component first, as zope asks __conform__ first
    assert IServiceCollection(app) is app
    app.unsetComponent(IService)
    assert IService(app) is app


def test_adapting_to_an_unrelated_interface_fails_or_gives_the_default() -> None:
    with pytest.raises(TypeError):
        IPersistable(MultiService())
    assert IPersistable(MultiService(), None) is None
    assert IPersistable.providedBy(Application("demo"))
    assert not IPersistable.providedBy(MultiService())


def test_get_component_of_a_provided_interface_is_the_application() -> None:
    app = Application("demo")
    assert app.getComponent(IService) is app
    assert app.getComponent(IProcess) is app
    assert app.getComponent(IPersistable) is app


def test_add_component_registers_every_interface_the_component_provides() -> None:
    app = Application("demo")
    collection = MultiService()
    app.addComponent(collection, ignoreClass=1)
    assert app.getComponent(IService) is collection
    assert app.getComponent(IServiceCollection) is collection
    assert app.getComponent(IProcess) is app  # a MultiService is no IProcess
    process = Process(uid=7)
    app.addComponent(process)
    assert IProcess(app) is process


def test_add_component_honours_implementer_declarations() -> None:
    app = Application("demo")
    declared = _Declared()
    app.addComponent(declared)
    assert IService(app) is declared


def test_remove_component_forgets_it_everywhere() -> None:
    app = Application("demo")
    collection = MultiService()
    app.addComponent(collection, ignoreClass=1)
    app.setComponent(IGreeting, "other")
    removed = app.removeComponent(collection)
    assert set(removed) == {IService, IServiceCollection}
    assert IService(app) is app
    assert app.getComponent(IGreeting) == "other"


def test_set_adapter_and_add_adapter_build_the_adapter_from_the_application() -> None:
    app = Application("demo")
    app.setAdapter(IGreeting, lambda original: ("adapted", original))
    assert app.getComponent(IGreeting) == ("adapted", app)
    made = app.addAdapter(lambda original: MultiService(), ignoreClass=1)
    assert IServiceCollection(app) is made


def test_componentized_is_a_mixin_for_other_classes() -> None:
    thing = Componentized()
    assert IService(thing, None) is None
    thing.setComponent(IService, MultiService())
    assert isinstance(IService(thing), MultiService)


# -- surviving the formats --------------------------------------------------------------


@pytest.mark.parametrize("kind, ext", FORMATS)
def test_a_component_survives_a_save_and_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              kind: str, ext: str) -> None:
    monkeypatch.chdir(tmp_path)
    app = Application("demo")
    app.setStyle(kind)
    app.setComponent(IGreeting, _greeting("hello"))
    app.setComponent(IOther, {"plain": ["data", 1]})
    path = app.save("known-good")
    assert path == f"demo-known-good.{ext}"
    again = persist.load(path)
    assert again.getComponent(IGreeting).motto == "hello"  # type: ignore[attr-defined]
    assert again.getComponent(IOther) == {"plain": ["data", 1]}
    assert IService(again) is again


@pytest.mark.parametrize("kind, ext", FORMATS)
def test_a_service_that_is_also_a_component_stays_one_object(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             kind: str, ext: str) -> None:
    monkeypatch.chdir(tmp_path)
    app = Application("demo")
    child = MultiService()
    child.setName("child")
    child.setServiceParent(app)
    app.setComponent(IGreeting, child)
    app.setStyle(kind)
    again = persist.load(app.save())
    assert again.getComponent(IGreeting) is again.getServiceNamed("child")


@pytest.mark.parametrize("kind, ext", FORMATS)
def test_transient_components_are_left_out_of_every_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         kind: str, ext: str) -> None:
    monkeypatch.chdir(tmp_path)
    app = Application("demo")
    opened = _OpenThing(tmp_path / "log")
    app.setComponent(IGreeting, opened)  # the component says it is transient
    app.setComponent(IVolatile, lambda event: None)  # the interface says so
    app.setComponent(IOther, "kept")
    app.setStyle(kind)
    assert app.getComponent(IGreeting) is opened
    again = persist.load(app.save())
    assert again.getComponent(IGreeting) is None
    assert again.getComponent(IVolatile) is None
    assert again.getComponent(IOther) == "kept"
    assert app.getComponent(IGreeting) is opened  # the running application keeps it
    opened.file.close()


def test_xml_refuses_a_component_whose_class_nobody_declared_safe(tmp_path: Path) -> None:
    app = Application("demo")
    app.setComponent(IGreeting, _Declared())
    app.setStyle("xml")
    with pytest.raises(PersistError):
        app.save(filename=str(tmp_path / "demo.tax"))
    assert not (tmp_path / "demo.tax").exists()


def test_yaml_recipes_hold_no_components(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = Application("demo")
    app.setComponent(IOther, "lost")
    app.setStyle("yaml")
    with caplog.at_level(logging.WARNING, logger="tapster.persist"):
        path = app.save(filename=str(tmp_path / "demo.yaml"))
    assert "components" in caplog.text
    assert persist.load(path).getComponent(IOther) is None


def test_a_corrupt_component_table_is_one_clear_error(tmp_path: Path) -> None:
    app = Application("demo")
    app._adapterCache = ["not", "a", "table"]  # type: ignore[attr-defined]
    path = persist.save(app, str(tmp_path / "demo.tap"))
    with pytest.raises(PersistError, match="components"):
        persist.load(path)


def test_old_files_without_components_load_and_take_them(tmp_path: Path) -> None:
    app = Application("demo")
    path = persist.save(app, str(tmp_path / "demo.tap"))
    again = persist.load(path)
    assert "_adapterCache" not in vars(again)  # nothing is added to files that use no components
    assert again.getComponent(IGreeting) is None
    again.setComponent(IGreeting, 1)
    assert again.getComponent(IGreeting) == 1


# -- IPersistable: Twisted's Persistent surface ----------------------------------------------


@pytest.mark.parametrize("kind, ext", FORMATS + [("yaml", "yaml")])
def test_save_with_a_tag_writes_name_tag_ext_in_the_apps_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                kind: str, ext: str) -> None:
    monkeypatch.chdir(tmp_path)
    app = persist.load(persist.save(Application("demo"), f"built.{ext}"))
    assert app.persistStyle == kind
    persistable = IPersistable(app)
    assert persistable.save("known-good") == f"demo-known-good.{ext}"
    assert persist.load(f"demo-known-good.{ext}").name == "demo"
    assert persistable.save() == f"demo.{ext}"
    assert (tmp_path / f"demo.{ext}").is_file()


def test_set_style_changes_the_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = Application("demo")
    persistable = IPersistable(app)
    assert persistable.save("a") == "demo-a.tap"
    persistable.setStyle("source")
    assert persistable.save("a") == "demo-a.tas"
    assert (tmp_path / "demo-a.tas").read_text().startswith("# tapster application")
    persistable.setStyle("xml")
    assert persistable.save("a") == "demo-a.tax"
    assert (tmp_path / "demo-a.tax").read_bytes().startswith(b"<?xml")
    assert app.persistStyle == "xml"  # twistd's shutdown save follows it
    assert persist.load("demo-a.tax").persistStyle == "xml"


def test_set_style_refuses_an_unknown_style() -> None:
    with pytest.raises(PersistError, match="unknown format"):
        IPersistable(Application("demo")).setStyle("marmalade")


def test_save_to_a_filename_writes_that_name_in_the_style(tmp_path: Path) -> None:
    app = Application("demo")
    app.setStyle("source")
    target = tmp_path / "anything.bin"
    assert IPersistable(app).save(filename=str(target)) == str(target)
    assert target.read_text().startswith("# tapster application")


def test_save_with_a_passphrase_encrypts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = Application("demo")
    assert IPersistable(app).save("secret", passphrase="hunter2") == "demo-secret.etap"
    assert persist.is_encrypted("demo-secret.etap")
    assert persist.load("demo-secret.etap", passphrase="hunter2").name == "demo"


def test_save_refuses_a_name_outside_the_run_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PersistError):
        IPersistable(Application("demo")).save("../escape")


def test_persistent_wraps_another_object(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = Application("inner")
    wrapper = Persistent(app, "outer")
    assert IPersistable.providedBy(wrapper)
    assert wrapper.save("t") == "outer-t.tap"
    wrapper.setStyle("source")
    assert wrapper.save() == "outer.tas"
    assert app.persistStyle == "source"


def test_persistable_is_public_in_persist() -> None:
    assert IPersistable.__module__ == "tapster.core.persist"
    assert "IPersistable" in persist.__all__
    assert persist.IPersistable is service._IPersistable


# -- a .tac's component, through twistd's shutdown save ----------------------------------

TAC = """\
from tapster.core.persist import IPersistable
from tapster.core.protocol import Factory
from tapster.core.service import Application


class IGreeting:
    pass


application = Application("greeter")
component = Factory()
component.motto = "from the tac"
application.setComponent(IGreeting, component)
IPersistable(application).setStyle({style!r})
"""


@pytest.mark.parametrize("kind, ext", FORMATS)
def test_a_component_set_in_a_tac_survives_the_shutdown_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             kind: str, ext: str) -> None:
    from tapster.twistd.loading import load_tac

    monkeypatch.chdir(tmp_path)
    (tmp_path / "greeter.tac").write_text(TAC.format(style=kind))
    app = load_tac("greeter.tac")
    assert app.save("shutdown") == f"greeter-shutdown.{ext}"  # what twistd calls at shutdown
    again = persist.load(f"greeter-shutdown.{ext}")
    assert again.getComponent(_tac_interface(app)).motto == "from the tac"


def _tac_interface(app: Any) -> Any:
    """The tac's IGreeting: any class with that path finds the component (they are keyed by path)."""
    key = next(iter(app._adapterCache))
    return type(key.rpartition(".")[2], (), {"__module__": key.rpartition(".")[0]})


@pytest.mark.parametrize("kind, ext", FORMATS)
def test_twistd_shutdown_save_keeps_components(tmp_path: Path, kind: str, ext: str) -> None:
    port = free_port()
    app = Application("site")
    TCPServer(port, Factory(), interface="127.0.0.1").setServiceParent(app)
    app.setComponent(IGreeting, _greeting("survives twistd"))
    app.setStyle(kind)
    persist.save(app, str(tmp_path / f"site.{ext}"))
    proc = subprocess.Popen([command("twistd"), "-n", "-f", f"site.{ext}"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    again = persist.load(str(tmp_path / f"site-shutdown.{ext}"))
    assert again.getComponent(IGreeting).motto == "survives twistd"  # type: ignore[attr-defined]
