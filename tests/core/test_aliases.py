"""The alias table: class paths an older tapster wrote still resolve, and never to anything undeclared."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import pytest

from tapster.core import persist
from tapster.core._persist import aliases
from tapster.core.errors import PersistError
from tapster.core.service import Application, MultiService


@pytest.mark.parametrize(
    "old, new",
    [
        (("core.service", "Application"), ("tapster.core.service", "Application")),
        (("core", "service"), ("tapster.core", "service")),
        (("plugins.qotd", "QOTDFactory"), ("tapster.plugins.qotd", "QOTDFactory")),
        (("core._source_format", "instance"), ("tapster.core.persist", "instance")),
        (("plugins._console.service", "TelnetService"), ("tapster.plugins.console", "TelnetService")),
        (("tapster.plugins._console.telnet", "TelnetShellFactory"), ("tapster.plugins.console", "TelnetShellFactory")),
        (("tapster.core.service", "Application"), ("tapster.core.service", "Application")),  # current: unchanged
        (("corex.service", "X"), ("corex.service", "X")),  # a prefix must end at a dot
        (("collections", "OrderedDict"), ("collections", "OrderedDict")),
    ],
)
def test_current_path(old: tuple[str, str], new: tuple[str, str]) -> None:
    assert aliases.current_path(*old) == new


def test_every_alias_target_exists() -> None:
    """A row pointing nowhere would turn an old file's clear 'renamed' into a confusing import error."""
    import importlib

    for new in set(aliases.MODULE_ALIASES.values()):
        importlib.import_module(new)
    for old, new in aliases.CLASS_ALIASES.items():
        module, _, name = new.rpartition(".")
        obj = getattr(importlib.import_module(module), name)
        assert f"{obj.__module__}.{obj.__qualname__}" == new, f"{old} → {new} is not where the class says it lives"


def _old_layout_pickle(obj: object) -> bytes:
    """``obj`` pickled as the old layout would have: protocol 0 spells each class path as text."""
    data = pickle.dumps(obj, protocol=0)
    return data.replace(b"ctapster.core.", b"ccore.").replace(b"ctapster.plugins.", b"cplugins.")


def test_a_pickle_naming_old_paths_loads(tmp_path: Path) -> None:
    app = Application("old")
    MultiService().setServiceParent(app)
    data = _old_layout_pickle(app)
    assert b"ccore.service" in data and b"tapster" not in data
    path = tmp_path / "old.tap"
    path.write_bytes(data)
    loaded = persist.load(str(path), kind="pickle")
    assert type(loaded) is Application and isinstance(next(iter(loaded)), MultiService)


def test_an_alias_never_makes_an_undeclared_name_loadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The XML allow-list is checked on the path the alias leads to."""
    monkeypatch.setattr(aliases, "MODULE_ALIASES", {**aliases.MODULE_ALIASES, "harmless": "os"})
    path = tmp_path / "evil.tax"
    path.write_text(
        "<?xml version='1.0' encoding='utf-8'?>\n<tapster-application format=\"1\">\n"
        '<call module="harmless" name="system"><args><str>true</str></args></call>\n</tapster-application>\n'
    )
    with pytest.raises(PersistError, match=r"os\.system is not allowed"):
        persist.load(str(path))


def test_old_source_imports_bind_what_they_used_to() -> None:
    import builtins

    namespace: dict[str, object] = {"__builtins__": dict(vars(builtins), __import__=aliases.legacy_import)}
    exec(
        "import core.service\n"
        "from core.internet import TCPServer\n"
        "from plugins.qotd import QOTDFactory\n"
        "from core._source_format import instance, setstate\n"
        "from plugins._console.service import TelnetService\n"
        "import os.path\n"
        "from json import dumps\n",
        namespace,
    )
    import tapster.core.internet
    import tapster.plugins.console
    import tapster.plugins.qotd

    assert namespace["core"] is sys.modules["tapster.core"]
    assert namespace["core"].service.Application is Application  # type: ignore[attr-defined]
    assert namespace["TCPServer"] is tapster.core.internet.TCPServer
    assert namespace["QOTDFactory"] is tapster.plugins.qotd.QOTDFactory
    assert namespace["instance"] is persist.instance and namespace["setstate"] is persist.setstate
    assert namespace["TelnetService"] is tapster.plugins.console.TelnetService
    assert namespace["os"] is sys.modules["os"] and callable(namespace["dumps"])


def test_a_class_moved_out_of_a_module_still_imports_from_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """``from old.module import Moved`` after Moved left old.module: answered from its new home."""
    old = types.ModuleType("tapster.core.gone_module")
    monkeypatch.setitem(sys.modules, "tapster.core.gone_module", old)
    monkeypatch.setattr(aliases, "CLASS_ALIASES", {"core.gone_module.Moved": "tapster.core.service.MultiService"})
    module = aliases.legacy_import("core.gone_module", {}, {}, ("Moved",), 0)
    assert module.Moved is MultiService  # type: ignore[attr-defined]
    assert aliases.current_path("core.gone_module", "Moved") == ("tapster.core.service", "MultiService")


def test_a_saved_class_reports_a_public_module() -> None:
    """Every class a real application saves is named by a public path (no ``_private`` part)."""
    from tapster.core.plugin import attach, make_service

    app = Application("all")
    for plugin, argv in [("qotd", ["--port", "tcp:0:interface=127.0.0.1", "--static", "x"]),
                         ("echo", ["--port", "unix:echo.sock"]),
                         ("telnet", ["--port", "0", "--password", "pw"])]:
        service, recipe = make_service(plugin, argv)
        attach(app, service, recipe)
    import re

    text = persist.dumps(app, "xml").decode()
    paths = {f"{m}.{n}" for m, n in re.findall(r'module="([^"]+)" (?:class|name)="([^"]+)"', text)}
    assert "tapster.plugins.console.TelnetService" in paths and "tapster.core.service.Application" in paths
    private = sorted(p for p in paths if any(part.startswith("_") for part in p.split(".")))
    assert not private, private
