"""The YAML recipe format: recording recipes, writing them, and rebuilding applications from them."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tapster.core import _assembly, persist, usage
from tapster.core._persist import yaml_format as _yaml_format
from tapster.core.errors import PersistError
from tapster.core.internet import TCPServer
from tapster.core.plugin import LoadedPlugin as ServiceMaker
from tapster.core.plugin import build_application as build
from tapster.core.service import Application, Service


class DemoOptions(usage.Options):
    optFlags = [["verbose", "v", "Talk more."]]
    optParameters = [["port", "p", "8000", "Port."], ["greeting", "g", "hello", "Greeting."]]

    def __init__(self) -> None:
        super().__init__()
        self["include"] = []
        self["loud"] = 0
        self["args"] = ()

    def opt_include(self, name: str) -> None:
        """Repeatable."""
        self["include"].append(name)

    opt_i = opt_include

    def opt_loud(self) -> None:
        """Counted."""
        self["loud"] += 1

    opt_L = opt_loud

    def parseArgs(self, *args: str) -> None:
        self["args"] = args


class DemoService(Service):
    def __init__(self, config: dict) -> None:
        self.config = dict(config)


@pytest.fixture
def demo_plugin(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """A plugin ``demo`` (besides the installed ones); returns the configs makeService saw."""
    import tapster.core.plugin

    seen: list[dict] = []

    def make(config):
        if config["greeting"] == "explode":
            raise RuntimeError("kaput")
        seen.append(dict(config))
        return DemoService(config)

    real = tapster.core.plugin.load_plugin

    def load_plugin(name: str):
        if name == "demo":
            return ServiceMaker("demo", "A demo.", DemoOptions, make, SimpleNamespace(__file__="demo.py"))
        return real(name)

    monkeypatch.setattr(tapster.core.plugin, "load_plugin", load_plugin)
    return seen


def parsed(argv: list[str]) -> DemoOptions:
    config = DemoOptions()
    config.parseOptions(argv)
    return config


# -- recipes ---------------------------------------------------------------------


def test_recipe_records_given_options_by_long_name_as_typed() -> None:
    argv = ["-p", "9000", "-v", "--include=a", "-i", "b", "-LL", "--greeting", "hi", "x", "y"]
    recipe = _assembly.recipe_for("demo", parsed(argv), argv)
    assert recipe == {
        "plugin": "demo",
        "options": {"port": "9000", "verbose": True, "include": ["a", "b"], "loud": 2, "greeting": "hi"},
        "args": ["x", "y"],
    }


def test_recipe_leaves_out_options_not_given_and_keeps_the_last_parameter() -> None:
    argv = ["--port", "1", "--port", "2", "--include", "only"]
    assert _assembly.recipe_for("demo", parsed(argv), argv) == {
        "plugin": "demo",
        "options": {"port": "2", "include": "only"},
    }


def test_options_argv_rebuilds_the_same_config() -> None:
    argv = ["-p", "9000", "-v", "-i", "a", "-i", "-dash", "-LLL", "--greeting=hi there", "--", "-x"]
    original = parsed(argv)
    recipe = _assembly.recipe_for("demo", original, argv)
    again = parsed(_assembly.options_argv(DemoOptions(), recipe["options"], recipe.get("args", ())))
    assert dict(again) == dict(original)


def test_options_argv_accepts_hand_written_values() -> None:
    argv = _assembly.options_argv(
        DemoOptions(), {"port": 9000, "verbose": False, "loud": 0, "include": None, "greeting": 1.5}
    )
    config = parsed(argv)
    assert (config["port"], config["verbose"], config["loud"], config["include"], config["greeting"]) == (
        "9000", False, 0, [], "1.5"
    )


@pytest.mark.parametrize(
    "options, match",
    [
        ({"prot": "1"}, r"option --prot not recognized \(did you mean --port\?\)"),
        ({"verbose": "yes please"}, "--verbose is a flag"),
        ({"port": True}, "--port takes a value, not true"),
        ({"port": ["1", "2"]}, "--port takes one value"),
        ({"include": [{"a": 1}]}, "is not a value"),
    ],
)
def test_options_argv_names_the_bad_option(options: dict, match: str) -> None:
    with pytest.raises(usage.UsageError, match=match):
        _assembly.options_argv(DemoOptions(), options)


def test_unique_names_for_a_second_service_of_a_plugin() -> None:
    app = Application("a")
    for _ in range(3):
        _assembly.attach(app, Service(), {"plugin": "demo", "options": {}})
    assert [s.name for s in app] == ["demo", "demo-2", "demo-3"]
    assert all(s.tapsterRecipe["plugin"] == "demo" for s in app)


def test_attach_keeps_a_name_the_plugin_chose() -> None:
    app = Application("a")
    service = Service()
    service.setName("web")
    _assembly.attach(app, service, {"plugin": "demo", "options": {}})
    assert app.getServiceNamed("web") is service


# -- writing and loading ---------------------------------------------------------


def two_service_app() -> Application:
    app = build("qotd", ["-p", "tcp:0:interface=127.0.0.1", "--static", "Hi: there"], appname="both", uid=1000,
                gid="staff")
    from tapster.core.plugin import attach, make_service

    service, recipe = make_service("echo", ["--port", "tcp:0:interface=127.0.0.1"])
    attach(app, service, recipe)
    return app


def test_dump_is_a_readable_recipe() -> None:
    text = _yaml_format.dump(two_service_app()).decode()
    assert text.startswith("tapster: 1\n")
    assert "!!" not in text
    assert yaml.safe_load(text) == {
        "tapster": 1,
        "name": "both",
        "uid": 1000,
        "gid": "staff",
        "services": [
            {"name": "qotd", "plugin": "qotd", "options": {"port": "tcp:0:interface=127.0.0.1", "static": "Hi: there"}},
            {"name": "echo", "plugin": "echo", "options": {"port": "tcp:0:interface=127.0.0.1"}},
        ],
    }


def test_load_of_save_has_the_same_tree(tmp_path: Path) -> None:
    app = two_service_app()
    path = str(tmp_path / "both.yaml")
    persist.save(app, path)
    loaded = persist.load(path)
    assert (loaded.name, loaded.processName, loaded.uid, loaded.gid, loaded.persistStyle) == (
        "both", "both", 1000, "staff", "yaml"
    )
    assert [(s.name, type(s)) for s in loaded] == [("qotd", TCPServer), ("echo", TCPServer)]
    assert [s.args[0] for s in loaded] == [s.args[0] for s in app]
    assert loaded.getServiceNamed("qotd").args[1].quoter.getQuote() == "Hi: there"
    assert [s.tapsterRecipe for s in loaded] == [s.tapsterRecipe for s in app]
    assert all(s.parent is loaded for s in loaded)


def test_recipes_survive_pickle_so_a_pickled_app_converts_to_yaml(tmp_path: Path) -> None:
    persist.save(two_service_app(), str(tmp_path / "both.tap"))
    app = persist.load(str(tmp_path / "both.tap"))
    persist.save(app, str(tmp_path / "both.yaml"))
    assert [s.name for s in persist.load(str(tmp_path / "both.yaml"))] == ["qotd", "echo"]


def write(tmp_path: Path, text: str, name: str = "app.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_hand_written_recipe_with_some_options_uses_the_defaults(tmp_path: Path, demo_plugin) -> None:
    path = write(tmp_path, """\
        # written by hand
        services:
          - plugin: demo
            options:
              greeting: salut
          - plugin: demo
            options: {port: 9001, include: [a, b], loud: 2}
            args: [one]
    """)
    app = persist.load(path)
    assert app.name == "app" and app.uid is None
    assert [s.name for s in app] == ["demo", "demo-2"]
    first, second = demo_plugin
    assert (first["port"], first["greeting"], first["include"]) == ("8000", "salut", [])
    assert (second["port"], second["include"], second["loud"], second["args"]) == ("9001", ["a", "b"], 2, ("one",))


def test_python_tag_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write(tmp_path, f"""\
        name: evil
        services:
          - plugin: !!python/object/apply:os.system ["touch {marker}"]
    """)
    with pytest.raises(PersistError) as info:
        persist.load(path)
    message = str(info.value)
    assert "refused the YAML tag !!python/object/apply:os.system" in message and "line 3" in message
    assert "\n" not in message
    assert not marker.exists()


def test_unknown_plugin_names_the_service_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  - plugin: qotd\n  - plugin: ecoh\n    name: mine\n")
    with pytest.raises(
        PersistError, match=r"service 'mine' \(plugin ecoh\): unknown plugin 'ecoh'; did you mean 'echo'"
    ):
        persist.load(path)


def test_bad_option_names_the_service_and_the_option(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  - plugin: qotd\n    options: {prot: 8007}\n")
    with pytest.raises(PersistError, match=r"service 'qotd' \(plugin qotd\): option --prot not recognized"):
        persist.load(path)


def test_bad_option_value_names_the_service_and_the_option(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  - plugin: qotd\n    options: {port: 'tcp:notaport'}\n")
    with pytest.raises(PersistError, match=r"service 'qotd' \(plugin qotd\): invalid value for --port"):
        persist.load(path)


def test_plugin_failing_to_build_names_the_service(tmp_path: Path, demo_plugin) -> None:
    path = write(tmp_path, "services:\n  - plugin: demo\n    options: {greeting: explode}\n")
    with pytest.raises(
        PersistError, match=r"service 'demo' \(plugin demo\): the plugin could not build it: RuntimeError: kaput"
    ):
        persist.load(path)


@pytest.mark.parametrize(
    "text, match",
    [
        ("services: [\n", r"not valid YAML: .* \(line 2\)"),
        ("- just a list\n", "a recipe is a mapping"),
        ("name: x\nservice:\n  - plugin: qotd\n", r"unknown key 'service' \(did you mean 'services'\?\)"),
        ("tapster: 2\nservices: []\n", "recipe version 2"),
        (
            "services:\n  - plugin: qotd\n    option: {}\n",
            r"service #1: unknown key 'option' \(did you mean 'options'\?\)",
        ),
        ("services:\n  - name: x\n", r"service #1: 'plugin: NAME' is missing"),
        ("services:\n  - qotd\n", "each service is a mapping"),
        ("services: {plugin: qotd}\n", "services must be a list"),
        ("uid: [1]\nservices: []\n", "uid must be a user/group name or a number"),
        ("services:\n  - plugin: qotd\n    options: [port]\n", "options must be a mapping"),
        ("services:\n  - {plugin: qotd, name: a}\n  - {plugin: echo, name: a}\n", "two services are named 'a'"),
        ("services:\n  - {plugin: qotd, options: {help: true}}\n", "do not belong in a recipe"),
    ],
)
def test_bad_recipes_are_one_clear_line(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(PersistError, match=match) as info:
        persist.load(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_service_without_recipe_cannot_be_saved_as_yaml(tmp_path: Path) -> None:
    app = two_service_app()
    extra = Service()
    extra.setName("by-hand")
    extra.setServiceParent(app)
    with pytest.raises(PersistError, match=r"service 'by-hand' \(Service\) was not built by a plugin"):
        persist.save(app, str(tmp_path / "x.yaml"))
    assert list(tmp_path.iterdir()) == []


def test_sniff_recognises_recipes_by_content(tmp_path: Path) -> None:
    assert _yaml_format.sniff(b"tapster: 1\nname: x\n")
    assert _yaml_format.sniff(b"# comment\n\n---\nservices:\n")
    assert not _yaml_format.sniff(b"\x80\x05\x95")
    assert not _yaml_format.sniff(b"<?xml version='1.0'?>")
    assert not _yaml_format.sniff(b"# a comment\nfrom core import service\n")
    path = write(tmp_path, "# my app\nname: n\nservices:\n  - plugin: echo\n    options: {port: 'tcp:0'}\n", "app.txt")
    assert persist.load(path).persistStyle == "yaml"


def test_spec_is_registered_through_the_hook() -> None:
    spec = persist.format_for("yaml")
    assert (spec.extension, spec.safe) == ("yaml", True)
    assert persist.format_for(filename="a.yaml") is spec
