"""A safe file names only callables their owners declared: no bound method of a declared class gets in by the back door.

The attack from issue 9: a ``.tax`` holding a ``TimerService`` whose callable is
a bound method that runs code (a console shell's ``runcode``) or writes files
(``Application.save``), called with the file's own arguments when twistd starts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tapster.core import persist
from tapster.core._persist import xml_format
from tapster.core._persist.safety import SafeNames, safe_names
from tapster.core.errors import PersistError
from tapster.core.internet import TimerService
from tapster.core.service import Application

HEAD = "<?xml version='1.0' encoding='utf-8'?>\n<tapster-application format=\"1\">\n"
TAIL = "\n</tapster-application>\n"


def timer_app(callable_xml: str, args_xml: str) -> str:
    """An application holding one TimerService that calls ``callable_xml`` with ``args_xml`` every second."""
    return (
        HEAD + '<instance id="app" module="tapster.core.service" class="Application">'
        '<attr name="name"><str>evil</str></attr>'
        '<attr name="services"><list>'
        '<instance module="tapster.core.internet" class="TimerService">'
        '<attr name="step"><int>1</int></attr>'
        f'<attr name="call"><tuple>{callable_xml}<tuple>{args_xml}</tuple><dict /></tuple></attr>'
        '<attr name="name"><str>timer</str></attr><attr name="parent"><ref id="app" /></attr>'
        "</instance></list></attr>"
        '<attr name="namedServices"><dict /></attr>'
        "</instance>" + TAIL
    )


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "evil.tax"
    path.write_text(text)
    return persist.load(str(path))


@pytest.mark.parametrize("shell_module", ["tapster.plugins._console.shell", "plugins._console.shell"])
def test_a_shells_runcode_is_refused(tmp_path: Path, shell_module: str) -> None:
    marker = tmp_path / "PWNED"
    shell = f'<instance module="{shell_module}" class="Shell"><attr name="locals"><dict /></attr></instance>'
    text = timer_app(f'<method name="runcode">{shell}</method>', f"<str>open({str(marker)!r}, 'w')</str>")
    with pytest.raises(PersistError, match=r"tapster\.plugins\._console\.shell\.Shell is not allowed"):
        load(tmp_path, text)
    assert not marker.exists()


def test_application_save_as_a_timer_callable_is_refused(tmp_path: Path) -> None:
    text = timer_app('<method name="save"><ref id="app" /></method>', f"<str>{tmp_path / 'written'}</str>")
    with pytest.raises(PersistError, match=r"tapster\.core\.service\.Application\.save is not allowed"):
        load(tmp_path, text)
    assert list(tmp_path.iterdir()) == [tmp_path / "evil.tax"]


@pytest.mark.parametrize("method", ['<method name="append"><list /></method>',
                                    '<method name="update"><dict /></method>',
                                    '<method name="format"><str>{0}</str></method>'])
def test_methods_written_in_c_are_never_named(tmp_path: Path, method: str) -> None:
    with pytest.raises(PersistError, match="not a method written in Python"):
        load(tmp_path, timer_app(method, "<int>1</int>"))


def test_saving_refuses_what_loading_would_refuse(tmp_path: Path) -> None:
    app = Application("evil")
    TimerService(1, app.save, "elsewhere").setServiceParent(app)
    with pytest.raises(PersistError, match=r"cannot save this application as XML: tapster\.core\.service\.Application"
                                           r"\.save is not allowed"):
        persist.dumps(app, "xml")
    app = Application("evil")
    TimerService(1, [].append, 1).setServiceParent(app)
    with pytest.raises(PersistError, match="the built-in method append is not allowed"):
        persist.dumps(app, "xml")


# -- what a plugin may declare ---------------------------------------------------------------


@pytest.fixture
def plugin_with_methods(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    package = tmp_path / "methplug"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "parts.py").write_text(
        "class Clock:\n"
        "    ticks = 0\n"
        "    def tick(self, n):\n"
        "        self.ticks += n\n"
        "    def wipe(self, n):\n"
        "        raise SystemExit('undeclared method ran')\n"
        "    @property\n"
        "    def sneaky(self):\n"
        f"        open({str(tmp_path / 'PROPERTY-RAN')!r}, 'w')\n"
        "        return self.tick\n"
        "    def __getattr__(self, name):\n"
        f"        open({str(tmp_path / 'GETATTR-RAN')!r}, 'w')\n"
        "        return self.tick\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    declared = safe_names().declared() | {"methplug.parts.Clock", "methplug.parts.Clock.tick"}
    monkeypatch.setattr(xml_format, "allowed_names", lambda: SafeNames(declared))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("methplug")]:
        sys.modules.pop(name, None)


def test_a_declared_method_loads_and_runs(plugin_with_methods: Path) -> None:
    clock = '<instance id="c" module="methplug.parts" class="Clock" />'
    app = load(plugin_with_methods, timer_app(f'<method name="tick">{clock}</method>', "<int>3</int>"))
    timer = next(iter(app))  # type: ignore[call-overload]
    func, args, _ = timer.call
    func(*args)
    assert func.__self__.ticks == 3


@pytest.mark.parametrize("name, why", [("wipe", r"methplug\.parts\.Clock\.wipe is not allowed"),
                                       ("sneaky", "not a method written in Python"),
                                       ("missing", "has no method missing")])
def test_undeclared_methods_properties_and_getattr_of_a_declared_class(plugin_with_methods: Path, name: str,
                                                                        why: str) -> None:
    clock = '<instance module="methplug.parts" class="Clock" />'
    with pytest.raises(PersistError, match=why):
        load(plugin_with_methods, timer_app(f'<method name="{name}">{clock}</method>', "<int>1</int>"))
    assert not (plugin_with_methods / "PROPERTY-RAN").exists()
    assert not (plugin_with_methods / "GETATTR-RAN").exists()
