"""The Python-source format (.tas): readable generated code that rebuilds the same application."""

from __future__ import annotations

import collections
import enum
import os
import runpy
from pathlib import Path
from typing import Any

import pytest

from tapster.core import internet, persist
from tapster.core._persist import source_format as _source_format
from tapster.core.errors import PersistError
from tapster.core.service import Application, Service
from tests.core.test_xml_format import assert_same_application, build, plugin_apps, shape


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


class Holder(Service):
    def __init__(self, **things: Any) -> None:
        self.__dict__.update(things)

    def tick(self) -> None:
        self.ticked = True


class Point:
    __slots__ = ("x", "y")

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


class TCPServer(internet.TCPServer):
    """Same name as tapster.core.internet.TCPServer: the generated imports must not clash."""


def roundtrip(tmp_path: Path, app: Any) -> Any:
    path = str(tmp_path / "app.tas")
    persist.save(app, path, "source")
    return persist.load(path)


def source_of(app: Any) -> str:
    return _source_format.dump(app).decode("utf-8")


# -- round trips ------------------------------------------------------------------


def test_every_builtin_plugin_round_trips(tmp_path):
    for label, app in plugin_apps(tmp_path):
        path = str(tmp_path / f"{label}.tas")
        persist.save(app, path)  # the extension chooses the format
        assert app.persistStyle == "source"
        assert_same_application(app, persist.load(path), "source")


def test_generated_source_reads_like_code(tmp_path):
    text = source_of(build("qotd", ["-p", "tcp:8007:interface=127.0.0.1", "-s", "Hi"], uid=1000))
    lines = text.splitlines()
    assert lines[0] == _source_format.HEADER
    assert "from tapster.core.persist import instance, setstate" in lines
    assert "from tapster.core.internet import TCPServer" in lines
    assert "from tapster.plugins.qotd import QOTDFactory" in lines
    assert "from tapster.plugins.quoters import StaticQuoter" in lines
    assert "application = instance(Application)" in lines
    assert "qotd = instance(TCPServer, {" in lines  # a shared object gets a variable named after the service
    assert "setstate(application, {" in lines  # the root is referred to from inside: created first, filled last
    assert "    'parent': application," in lines
    assert "    'namedServices': {'qotd': qotd}," in lines
    assert "    'uid': 1000," in lines
    assert "instance(StaticQuoter, {'quote': 'Hi'})" in text
    assert max(len(line) for line in lines) <= 100
    compile(text, "qotd.tas", "exec")


def test_generated_file_rebuilds_the_application_when_run_by_python(tmp_path):
    app = build("qotd", ["-p", "8007", "-s", "by runpy"])
    app.persistStyle = "source"  # as mktap sets it before saving
    path = tmp_path / "qotd.tas"
    persist.save(app, str(path))
    rebuilt = runpy.run_path(str(path))["application"]
    assert_same_application(app, rebuilt, app.persistStyle)


def test_an_edited_file_loads_with_the_edit(tmp_path):
    path = tmp_path / "qotd.tas"
    persist.save(build("qotd", ["-p", "8007", "-s", "Before"]), str(path))
    path.write_text(path.read_text().replace("'quote': 'Before'", "'quote': 'After'").replace("8007", "9009"))
    loaded = persist.load(str(path))
    server = loaded.getServiceNamed("qotd")
    assert server.args[0] == 9009 and server.args[1].quoter.quote == "After"


def test_hand_written_twisted_style_file_loads_by_extension(tmp_path):
    path = tmp_path / "hand.tas"
    path.write_text(
        "from tapster.core.service import Application\n"
        "from tapster.core import internet\n"
        "from tapster.plugins.qotd import QOTDFactory\n"
        "from tapster.plugins.quoters import StaticQuoter\n\n"
        "application = Application('hand')\n"
        "internet.TCPServer(8007, QOTDFactory(StaticQuoter('hand made'))).setServiceParent(application)\n"
    )
    loaded = persist.load(str(path))
    assert loaded.name == "hand" and loaded.persistStyle == "source"
    assert loaded.services[0].args[1].quoter.quote == "hand made"


def test_shared_objects_cycles_slots_enums_and_methods(tmp_path):
    shared = [1, 2]
    a, b = Holder(items=shared, mode=Mode.SLOW, where=Point(1, 2)), Holder(items=shared)
    a.setName("a")
    b.setName("b")
    app = Application("demo")
    a.setServiceParent(app)
    b.setServiceParent(app)
    a.peer, b.peer = b, a
    a.callback = b.tick
    loop: dict = {}
    loop["self"] = loop
    app.loop = loop
    app.ordered = collections.OrderedDict([("z", 1), ("a", {3, 1})])
    app.odd = [float("inf"), float("-inf"), 1e300, -0.0, 2j, b"\x00\r\n", "it's \"quoted\"\n", frozenset({1})]
    loaded = roundtrip(tmp_path, app)
    la, lb = loaded.getServiceNamed("a"), loaded.getServiceNamed("b")
    assert la.items is lb.items and la.items == [1, 2]
    assert la.peer is lb and lb.peer is la and la.parent is loaded
    assert la.mode is Mode.SLOW and (la.where.x, la.where.y) == (1, 2)
    la.callback()
    assert lb.ticked
    assert loaded.loop["self"] is loaded.loop
    assert list(loaded.ordered.items()) == [("z", 1), ("a", {1, 3})]
    assert loaded.odd == app.odd
    assert shape(loaded.odd) == shape(app.odd)


def test_shared_containers_are_one_statement_unless_they_contain_themselves():
    app = Application("containers")
    shared, cyclic = {"k": [1]}, []
    cyclic.append(cyclic)
    app.a, app.b, app.c, app.d = shared, shared, cyclic, cyclic
    text = source_of(app)
    assert "\na = {'k': [1]}\n" in text  # named after the attribute where it is first found
    assert "\nc = []\nc.extend([c])\n" in text


def test_nan_is_written_as_code():
    app = Application("n")
    app.value = float("nan")
    assert "float('nan')" in source_of(app)


def test_classes_with_the_same_name_get_distinct_imports(tmp_path):
    app = Application("clash")
    internet.TCPServer(1, None).setServiceParent(app)
    TCPServer(2, None).setServiceParent(app)
    text = source_of(app)
    assert "from tapster.core.internet import TCPServer\n" in text
    assert "from tests.core.test_source_format import TCPServer as TCPServer_2\n" in text
    loaded = roundtrip(tmp_path, app)
    assert [type(s) for s in loaded] == [internet.TCPServer, TCPServer]


@pytest.mark.parametrize("name, variable", [("my echo", "my_echo"), ("2nd", "service_2nd"), ("print", "print_2")])
def test_variables_are_named_after_services_and_never_shadow_builtins(name, variable):
    app = Application("names")
    service = Service()
    service.setName(name)
    service.setServiceParent(app)
    assert f"\n{variable} = instance(Service, {{" in source_of(app)


def test_plugin_options_object_round_trips(tmp_path):
    from tapster.core.plugin import load_plugin

    config = load_plugin("echo").options()
    config.parseOptions(["-p", "7007"])
    app = Application("demo")
    app.config = config
    loaded = roundtrip(tmp_path, app).config
    assert dict(loaded) == dict(config) and loaded.opts is loaded


# -- refusing to save, and bad files ----------------------------------------------


def test_lambda_is_refused_and_the_old_file_is_untouched(tmp_path):
    path = tmp_path / "app.tas"
    persist.save(build("qotd", ["-p", "8007"]), str(path))
    before = path.read_bytes()
    app = Application("demo")
    Holder(callback=lambda: None).setServiceParent(app)
    with pytest.raises(PersistError, match=r"^application\.services\[0\]\.callback: a lambda"):
        persist.save(app, str(path))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["app.tas"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("application = (\n", "line 1: "),
        ("x = 1\nraise ValueError('no\\nway')\n", "line 2: running it failed: ValueError: no way"),
        ("from plugins.nonexistent import X\napplication = X\n", "line 1: running it failed: ModuleNotFoundError"),
        ("app = 1\n", "defines no 'application'"),
        ("application = [1]\n", "holds a list, not an application"),
        ("x = '\0'\n", "not Python source"),
    ],
)
def test_bad_source_files_are_one_clear_line(tmp_path, text, message):
    path = tmp_path / "bad.tas"
    path.write_text(text)
    with pytest.raises(PersistError) as info:
        persist.load(str(path))
    assert message in str(info.value)
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_sniff_recognises_the_header_only():
    assert _source_format.sniff(_source_format.HEADER.encode() + b"\nfrom x import y\n")
    assert not _source_format.sniff(b"import os\n")
    assert not _source_format.sniff(b'<?xml version="1.0"?>')


def test_file_is_recognised_by_content_whatever_its_name(tmp_path):
    path = tmp_path / "renamed.data"
    persist.save(build("echo", ["-p", "7007"]), str(path), "source")
    assert persist.load(str(path)).persistStyle == "source"


def test_source_is_listed_as_an_unsafe_format():
    spec = persist.format_for("source")
    assert (spec.name, spec.extension, spec.safe) == ("source", "tas", False)
