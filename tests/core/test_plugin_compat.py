"""Twisted-style plugins: IPlugin/IServiceMaker, ServiceMaker(name, module, description, tapname), tap modules.

Written from Twisted's documented semantics: a ``ServiceMaker`` names the
module holding ``Options`` and ``makeService`` and imports it only when one
of them is used; an ``IServiceMaker`` provider has ``tapname``,
``description``, ``options`` and ``makeService(options)``; the 2002 tap
module has ``Options``, ``usage_message`` and ``getPorts(app, config)``.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest

import tapster.core.plugin
from tapster.core import internet, usage
from tapster.core.errors import PluginError
from tapster.core.plugin import (
    IPlugin,
    IServiceMaker,
    LoadedPlugin,
    PluginEntry,
    ServiceMaker,
    build_application,
    make_service,
    plugin_rows,
)
from tapster.core.service import IService, MultiService, Service, implementer

TAP_MODULE = '''
from tapster.core import usage
from tapster.core.service import Service

IMPORTED = True


class Options(usage.Options):
    optParameters = [["greeting", "g", "hi", "What to say."]]


class Greeter(Service):
    def __init__(self, greeting):
        self.greeting = greeting


def makeService(config):
    return Greeter(config["greeting"])
'''

MAKER_MODULE = '''
from tapster.core import usage
from tapster.core.plugin import IPlugin, IServiceMaker
from tapster.core.service import Service, implementer


class Options(usage.Options):
    optParameters = [["port", "p", "8000", "Port."]]


class Made(Service):
    def __init__(self, port):
        self.port = port


@implementer(IServiceMaker, IPlugin)
class MyServiceMaker:
    tapname = "myproj"
    description = "My project's server."
    options = Options

    def makeService(self, options):
        return Made(options["port"])


serviceMaker = MyServiceMaker()
'''

PORTS_MODULE = '''
"""A 2002-style tap module."""
from tapster.core import usage
from tapster.core.protocol import Factory, Protocol

usage_message = """Usage: mktap oldtap [options]
Serves the old way, from getPorts.
"""


class Options(usage.Options):
    optParameters = [["port", "p", "8007", "Port number or endpoint."]]


class Once(Protocol):
    def connectionMade(self):
        self.transport.write(b"old\\r\\n")
        self.transport.loseConnection()


def getPorts(app, config):
    factory = Factory()
    factory.protocol = Once
    port = config["port"]
    return [(int(port) if port.isdigit() else port, factory), ("tcp:0:interface=127.0.0.1", factory)]
'''


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a uniquely named module on sys.path; forgotten again after the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def write(source: str) -> str:
        name = f"twcompat_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


def install(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Make ``find_plugin`` see these entry points (name → value) and only them."""
    entries = {name: PluginEntry(name, value, "testdist", "1") for name, value in values.items()}
    monkeypatch.setattr(tapster.core.plugin, "plugin_entries", lambda: dict(entries))


# -- interfaces ---------------------------------------------------------------------


def test_implementer_declares_iplugin_and_iservicemaker_on_any_class() -> None:
    @implementer(IServiceMaker, IPlugin)
    class Maker:
        def __init__(self) -> None:
            self.tapname = "x"

    assert IServiceMaker.providedBy(Maker()) and IPlugin.providedBy(Maker())
    assert IServiceMaker.implementedBy(Maker) and IPlugin.implementedBy(Maker)
    assert IServiceMaker in Maker.__implemented__ and IPlugin in Maker.__implemented__
    maker = Maker()
    assert IServiceMaker(maker) is maker


def test_iplugin_is_a_marker_nothing_provides_by_accident() -> None:
    class Anything:
        tapname = "x"

    assert not IPlugin.providedBy(Anything())
    assert not IPlugin.providedBy(object())
    with pytest.raises(TypeError):
        IPlugin(Anything())
    assert IPlugin(Anything(), None) is None


def test_iservicemaker_is_provided_by_the_four_names_at_class_level() -> None:
    class Structural:
        tapname = "s"
        description = "d"
        options = usage.Options

        def makeService(self, options: object) -> Service:
            return Service()

    class Partial:
        tapname = "p"

    assert IServiceMaker.providedBy(Structural())
    assert not IServiceMaker.providedBy(Partial())
    assert not IServiceMaker.providedBy(sys)  # a module is no service maker


def test_servicemaker_provides_both_interfaces_and_keeps_its_arguments() -> None:
    maker = ServiceMaker("Twisted-ish Server", "no.such.module", "Serves things.", "thing")
    assert IServiceMaker.providedBy(maker) and IPlugin.providedBy(maker)
    assert (maker.name, maker.module, maker.description, maker.tapname) == (
        "Twisted-ish Server", "no.such.module", "Serves things.", "thing")
    assert "thing" in repr(maker)


# -- ServiceMaker is lazy -------------------------------------------------------------


def test_servicemaker_imports_its_module_only_when_options_or_makeservice_is_used(write_module) -> None:
    name = write_module(TAP_MODULE)
    maker = ServiceMaker("Greeter", name, "Says hi.", "greet")
    assert name not in sys.modules
    assert maker.description == "Says hi."
    assert name not in sys.modules
    options = maker.options
    assert name in sys.modules
    assert options is sys.modules[name].Options
    assert maker.makeService is sys.modules[name].makeService


def test_servicemaker_of_a_missing_module_fails_only_when_used() -> None:
    maker = ServiceMaker("Nothing", "no_such_module_for_tapster_tests", "Nothing here.", "nothing")
    with pytest.raises(ImportError):
        maker.options


def test_listing_a_servicemaker_entry_does_not_import_its_module(write_module, monkeypatch) -> None:
    tap = write_module(TAP_MODULE)
    plugin = write_module(f"""
        from tapster.core.plugin import ServiceMaker
        greeter = ServiceMaker("Greeter", {tap!r}, "Says hi to everyone.", "greet")
    """)
    install(monkeypatch, greet=f"{plugin}:greeter")
    assert plugin_rows() == [("greet", "Says hi to everyone.")]
    assert plugin in sys.modules and tap not in sys.modules


def test_a_servicemaker_whose_module_is_broken_is_listed_but_fails_to_load(write_module, monkeypatch) -> None:
    plugin = write_module("""
        from tapster.core.plugin import ServiceMaker
        broken = ServiceMaker("Broken", "no_such_module_for_tapster_tests", "Broken on use.", "broken")
    """)
    install(monkeypatch, broken=f"{plugin}:broken")
    assert plugin_rows() == [("broken", "Broken on use.")]
    with pytest.raises(PluginError, match=r"'broken'.*no_such_module_for_tapster_tests"):
        tapster.core.plugin.load_plugin("broken")


def test_a_servicemaker_entry_builds_through_mktaps_path(write_module, monkeypatch) -> None:
    tap = write_module(TAP_MODULE)
    plugin = write_module(f"""
        from tapster.core.plugin import ServiceMaker
        greeter = ServiceMaker("Greeter", {tap!r}, "Says hi.", "greet")
    """)
    install(monkeypatch, greet=f"{plugin}:greeter")
    loaded = tapster.core.plugin.load_plugin("greet")
    assert isinstance(loaded, LoadedPlugin)
    assert loaded.tapname == "greet" and loaded.module is sys.modules[tap]
    service, recipe = make_service("greet", ["--greeting", "hello"])
    assert service.greeting == "hello"
    assert recipe == {"plugin": "greet", "options": {"greeting": "hello"}}


# -- a ported Twisted plugin file -------------------------------------------------------


def test_a_ported_iservicemaker_instance_is_listed_and_built(write_module, monkeypatch) -> None:
    plugin = write_module(MAKER_MODULE)
    install(monkeypatch, myproj=f"{plugin}:serviceMaker")
    assert plugin_rows() == [("myproj", "My project's server.")]
    app = build_application("myproj", ["--port", "9000"], prog="twistd")
    (service,) = list(app)
    assert IService.providedBy(service) and service.port == "9000" and service.name == "myproj"


def test_an_object_with_the_four_names_needs_no_declaration(write_module, monkeypatch) -> None:
    plugin = write_module("""
        from tapster.core import usage
        from tapster.core.service import Service

        class Maker:
            tapname = "plain"
            description = "Undeclared, but shaped like one."
            options = usage.Options

            def makeService(self, options):
                return Service()

        maker = Maker()
    """)
    install(monkeypatch, plain=f"{plugin}:maker")
    service, _recipe = make_service("plain", [])
    assert isinstance(service, Service)


def test_a_plugin_of_no_known_shape_is_refused(write_module, monkeypatch) -> None:
    plugin = write_module("value = 42\n")
    install(monkeypatch, nothing=f"{plugin}:value")
    with pytest.raises(PluginError, match=r"'nothing'.*getPorts"):
        tapster.core.plugin.load_plugin("nothing")
    assert plugin_rows()[0][1].startswith("BROKEN: ")


# -- the 2002 tap module ----------------------------------------------------------------


def test_a_tap_module_lists_its_usage_message_and_shows_it_in_help(write_module, monkeypatch, capsys) -> None:
    plugin = write_module(PORTS_MODULE)
    install(monkeypatch, oldtap=plugin)
    assert plugin_rows() == [("oldtap", "Usage: mktap oldtap [options]")]
    with pytest.raises(SystemExit):
        make_service("oldtap", ["--help"])
    assert "Serves the old way, from getPorts." in capsys.readouterr().out


def test_a_tap_module_becomes_one_listening_service_per_port(write_module, monkeypatch) -> None:
    plugin = write_module(PORTS_MODULE)
    install(monkeypatch, oldtap=plugin)
    service, recipe = make_service("oldtap", ["--port", "8123"])
    assert isinstance(service, MultiService)
    first, second = list(service)
    assert isinstance(first, internet.TCPServer) and isinstance(second, internet.TCPServer)
    assert first.args[0] == 8123 and second.args[0] == 0 and second.kwargs["interface"] == "127.0.0.1"
    assert first.args[1] is second.args[1] and first.args[1].protocol.__name__ == "Once"
    assert recipe == {"plugin": "oldtap", "options": {"port": "8123"}}


def test_getports_returning_nonsense_is_a_plugin_error(write_module, monkeypatch) -> None:
    plugin = write_module("""
        from tapster.core import usage
        usage_message = "Broken."
        class Options(usage.Options):
            pass
        def getPorts(app, config):
            return 7
    """)
    install(monkeypatch, bad=plugin)
    with pytest.raises(PluginError, match=r"getPorts\(app, config\) must return"):
        make_service("bad", [])
