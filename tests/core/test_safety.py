"""The declarations behind the safe formats: explicit, lazily read, and each pointing at a real class."""

from __future__ import annotations

import importlib
import logging
import sys
import types
from pathlib import Path

import pytest

from tapster.core import persist
from tapster.core._builtin_hooks import CORE_SAFE_NAMES
from tapster.core._persist import safety
from tapster.core._persist.safety import SafeNames, dotted, safe_names
from tapster.core.errors import PersistError
from tapster.core.plugin import plugin_entries
from tapster.core.service import Application, Service


def _resolve(path: str) -> object:
    module, _, name = path.rpartition(".")
    obj: object = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def test_every_core_declaration_names_an_existing_class_by_its_own_path() -> None:
    for path in CORE_SAFE_NAMES:
        obj = _resolve(path)
        assert isinstance(obj, type), path
        assert dotted(obj) == path, f"{path} is a re-export of {dotted(obj)}"


def test_core_declares_classes_only_and_none_of_its_capabilities() -> None:
    names = safe_names().declared()
    for capability in ("tapster.core.persist.save", "tapster.core.persist.atomic_write",
                       "tapster.core.service.Application.save", "tapster.core.persist.load"):
        assert capability not in names


def test_every_built_in_plugin_declaration_is_real() -> None:
    for entry in plugin_entries().values():
        module = importlib.import_module(entry.value)
        for item in getattr(module, "safeNames", ()):
            path = dotted(item)
            assert dotted(_resolve(path)) == path, f"{entry.name}: {path}"


def test_nothing_of_the_shell_is_declared() -> None:
    """The console's shell runs code: a stranger's file must never be able to hand it to a service."""
    names = safe_names().declared()
    assert not [n for n in names if ".shell." in n or n.endswith(".Shell") or "runcode" in n]


def test_dotted_refuses_what_has_no_import_path() -> None:
    assert dotted(Service) == "tapster.core.service.Service"
    assert dotted("a.b.C") == "a.b.C"
    with pytest.raises(ValueError, match="no import path"):
        dotted(lambda: None)
    with pytest.raises(ValueError, match="not a dotted import path"):
        dotted("os; rm -rf")


@pytest.fixture
def fake_plugin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A plugin package ``fakeplug`` on sys.path whose entry module declares one class; records imports."""
    package = tmp_path / "fakeplug"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(
        "import sys\n"
        "sys.modules.setdefault('fakeplug_imports', []).append('plugin')\n"
        "from fakeplug.parts import Part\n"
        "safeNames = [Part, 'fakeplug.parts.Other']\n"
    )
    (package / "parts.py").write_text("class Part:\n    pass\n\nclass Other:\n    pass\n\nclass Secret:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    imports: list[str] = []
    monkeypatch.setitem(sys.modules, "fakeplug_imports", imports)  # type: ignore[arg-type]
    yield imports
    for name in [m for m in sys.modules if m.startswith("fakeplug")]:
        sys.modules.pop(name, None)


def test_a_plugins_declarations_are_read_only_when_needed(fake_plugin) -> None:
    names = SafeNames({"tapster.core.service.Service"}, {"fakeplug": ["fakeplug.plugin"]})
    assert names.allows("tapster.core.service.Service")
    assert fake_plugin == [], "a plugin module was imported for a name that core declares"
    assert names.allows("fakeplug.parts.Part") and names.allows("fakeplug.parts.Other")
    assert not names.allows("fakeplug.parts.Secret")
    assert fake_plugin == ["plugin"]  # read once


def test_a_broken_plugin_declares_nothing_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    names = SafeNames((), {"nosuchpkg": ["nosuchpkg.plugin"]})
    with caplog.at_level(logging.WARNING, logger="tapster.persist"):
        assert not names.allows("nosuchpkg.plugin.Thing")
    assert "nosuchpkg.plugin declares no safe names" in caplog.text


def test_a_hook_package_can_declare_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A tapster.hooks package declares through the tapster_safe_names hook, like tapster itself."""
    from tapster.core.hookspecs import hookimpl
    from tapster.core.plugin import get_plugin_manager

    hooks = types.ModuleType("extra_safe_hooks")

    @hookimpl
    def tapster_safe_names() -> list[object]:
        return ["collections.Counter", "bad name!"]

    hooks.tapster_safe_names = tapster_safe_names  # type: ignore[attr-defined]
    pm = get_plugin_manager()
    pm.register(hooks, name="extra_safe_hooks")
    try:
        names = safe_names()
        assert names.allows("collections.Counter")
        assert not names.allows("bad name!")
    finally:
        pm.unregister(name="extra_safe_hooks")
    assert not safe_names().allows("collections.Counter")


def test_a_safe_file_naming_an_undeclared_class_of_an_installed_plugin_is_refused(tmp_path: Path) -> None:
    """Being in a plugin's package is not enough: tapster.plugins.qotd imports ServerFactory, undeclared there."""
    path = tmp_path / "x.tax"
    path.write_text(
        "<?xml version='1.0' encoding='utf-8'?>\n<tapster-application format=\"1\">\n"
        '<instance module="tapster.plugins.qotd" class="ServerFactory" />\n</tapster-application>\n'
    )
    with pytest.raises(PersistError, match=r"tapster\.plugins\.qotd\.ServerFactory is not allowed"):
        persist.load(str(path))


class Undeclared(Service):
    """A service class nobody declared safe."""


def test_saving_as_xml_checks_the_same_declarations(tmp_path: Path) -> None:
    app = Application("x")
    Service().setServiceParent(app)
    assert b"tapster.core.service" in persist.dumps(app, "xml")
    Undeclared().setServiceParent(app)
    with pytest.raises(
        PersistError, match=r"cannot save this application as XML: tests\.core\.test_safety\.Undeclared"
    ):
        persist.dumps(app, "xml")
    assert safety.dotted(Service) in safe_names().declared()


def test_a_name_outside_every_plugins_package_is_looked_up_in_all_of_them(fake_plugin) -> None:
    """The answer never depends on what the file named before: a miss reads every plugin."""
    names = SafeNames((), {"fakeplug": ["fakeplug.plugin"], "otherplug": ["otherplug.plugin"]})
    assert not names.allows("collections.Counter")
    assert fake_plugin == ["plugin"]
    declaring = SafeNames((), {"elsewhere": ["fakeplug.plugin"]})  # its package is not where its classes are
    assert declaring.allows("fakeplug.parts.Part")
