"""The XML format (.tax): round trips of every built-in plugin, readable output, and a loader that runs nothing."""

from __future__ import annotations

import collections
import datetime
import enum
import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from tapster.core import persist
from tapster.core._persist import xml_format as _xml_format
from tapster.core._persist.safety import SafeNames, safe_names
from tapster.core.errors import PersistError
from tapster.core.internet import TCPServer, TimerService
from tapster.core.plugin import load_plugin
from tapster.core.protocol import Factory, Protocol
from tapster.core.service import Application, Service

# -- shared with tests/core/test_source_format.py ---------------------------------------


def build(plugin: str, argv: list[str], name: str | None = None, uid: Any = None, gid: Any = None) -> Application:
    """What mktap does: the plugin's service under a new Application."""
    maker = load_plugin(plugin)
    config = maker.options()
    config.parseOptions(argv)
    app = Application(name or plugin, uid, gid)
    service = maker.makeService(config)
    service.setName(plugin)
    service.setServiceParent(app)
    return app


def shape(obj: Any, seen: dict[int, int] | None = None, keep: list[Any] | None = None) -> Any:
    """A comparable picture of everything ``obj`` reaches, with shared objects and cycles as ("ref", n)."""
    seen = {} if seen is None else seen
    keep = [] if keep is None else keep
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return (type(obj).__name__, obj)
    if id(obj) in seen:
        return ("ref", seen[id(obj)])
    seen[id(obj)] = len(seen)
    keep.append(obj)
    if isinstance(obj, type):
        return ("class", obj.__module__, obj.__qualname__)
    if type(obj) in (list, tuple):
        return (type(obj).__name__, [shape(x, seen, keep) for x in obj])
    if type(obj) in (set, frozenset):
        return (type(obj).__name__, sorted(repr(shape(x, seen, keep)) for x in obj))
    if type(obj) is dict:
        return ("dict", [(shape(k, seen, keep), shape(v, seen, keep)) for k, v in obj.items()])
    state = obj.__getstate__()
    keep.append(state)
    return (f"{type(obj).__module__}.{type(obj).__qualname__}", shape(state, seen, keep))


def plugin_apps(tmp_path: Path) -> list[tuple[str, Application]]:
    fortunes = tmp_path / "fortunes"
    fortunes.write_text("One.\n%\nTwo.\n")
    both = build("qotd", ["-p", "tcp:8007:interface=127.0.0.1", "-s", "both"], name="both", uid=1000, gid="nogroup")
    echo = load_plugin("echo")
    config = echo.options()
    config.parseOptions(["-p", "tcp:8008:interface=127.0.0.1"])
    service = echo.makeService(config)
    service.setName("echo")
    service.setServiceParent(both)
    return [
        ("qotd-static", build("qotd", ["-p", "tcp:8007:interface=127.0.0.1", "-s", "Hello\r\nthere & <you>"])),
        ("qotd-fortune", build("qotd", ["-p", "8007", "-f", str(fortunes)], uid="daemon", gid=0)),
        ("qotd-unix", build("qotd", ["-p", f"unix:{tmp_path}/q.sock:mode=600"])),
        ("echo", build("echo", ["-p", "tcp:7007:interface=127.0.0.1"], name="my echo")),
        ("qotd+echo", both),
    ]


def assert_same_application(original: Application, loaded: Application, style: str) -> None:
    assert type(loaded) is Application
    assert shape(loaded) == shape(original)
    assert (loaded.name, loaded.processName, loaded.uid, loaded.gid) == (
        original.name, original.processName, original.uid, original.gid)
    assert loaded.persistStyle == style
    assert [s.name for s in loaded] == [s.name for s in original]
    for before, after in zip(original, loaded, strict=True):
        assert type(after) is type(before)
        assert after.parent is loaded  # identity, not an equal copy
        assert loaded.getServiceNamed(after.name) is after
        assert after.args[0] == before.args[0] and after.kwargs == before.kwargs
        assert type(after.args[1]) is type(before.args[1])
        quoter = getattr(before.args[1], "quoter", None)
        if quoter is not None:
            assert vars(after.args[1].quoter).get("quote") == vars(quoter).get("quote")
            assert getattr(after.args[1].quoter, "filenames", None) == getattr(quoter, "filenames", None)


# -- test classes (allowed by widening the allow-list to "tests" where needed) ----------


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Holder(Service):
    def __init__(self, **things: Any) -> None:
        self.__dict__.update(things)

    def tick(self) -> None:
        self.ticked = True


class SocketFactory(Factory):
    protocol = Protocol

    def __init__(self) -> None:
        self.sock = socket.socket()


class _AlsoTests(SafeNames):
    """The real declarations, plus every class of the test modules (which no plugin declares)."""

    def allows(self, path: str) -> bool:
        return path.startswith("tests.") or super().allows(path)


@pytest.fixture
def allow_tests(monkeypatch):
    real = safe_names()
    monkeypatch.setattr(_xml_format, "allowed_names", lambda: _AlsoTests(real.declared()))


def roundtrip(tmp_path: Path, app: Any) -> Any:
    path = str(tmp_path / "app.tax")
    persist.save(app, path, "xml")
    return persist.load(path)


def load_text(tmp_path: Path, text: str, name: str = "hostile.tax") -> Any:
    path = tmp_path / name
    path.write_text(text)
    return persist.load(str(path))


def document(body: str) -> str:
    return f'<?xml version="1.0" encoding="utf-8"?>\n<tapster-application format="1">\n{body}\n</tapster-application>\n'


# -- round trips ------------------------------------------------------------------


def test_every_builtin_plugin_round_trips(tmp_path):
    for label, app in plugin_apps(tmp_path):
        path = str(tmp_path / f"{label}.tax")
        persist.save(app, path)  # the extension chooses the format
        assert app.persistStyle == "xml"
        assert_same_application(app, persist.load(path), "xml")


def test_loaded_qotd_serves_its_quote_through_a_string_transport(tmp_path):
    from tapster.core.testing import StringTransport

    app = roundtrip(tmp_path, build("qotd", ["-p", "8007", "-s", "Saved quote"]))
    protocol = app.getServiceNamed("qotd").args[1].buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    assert transport.value() == b"Saved quote\r\n"


def test_file_is_indented_xml_with_a_versioned_root(tmp_path):
    path = tmp_path / "qotd.tax"
    persist.save(build("qotd", ["-p", "tcp:8007:interface=127.0.0.1", "-s", "Hi"]), str(path))
    text = path.read_text()
    assert text.startswith("<?xml version='1.0' encoding='utf-8'?>\n<tapster-application format=\"1\">")
    assert '<instance id="1" module="tapster.core.service" class="Application">' in text
    assert '<instance module="tapster.plugins.quoters" class="StaticQuoter">' in text
    assert '<attr name="quote"><str>Hi</str></attr>' in text
    assert '<attr name="parent"><ref id="1" /></attr>' in text
    assert '\n    <attr name="services">\n      <list>\n        <instance id="2"' in text  # indented by level
    assert _xml_format.sniff(path.read_bytes()[:512])


def test_running_application_saves_without_its_running_state(tmp_path):
    app = build("qotd", ["-p", "8007"])
    for service in app:
        service.running = 1
    app.running = 1
    loaded = roundtrip(tmp_path, app)
    assert not loaded.running and not loaded.getServiceNamed("qotd").running


@pytest.mark.parametrize(
    "value",
    [
        "", "plain", " spaced \t", "line\nbreaks\r\nand\rreturns", "ctl\x00\x01\x1b", "ünïcødé ☃ 𝄞", "\ud800lone",
        "<tag> & 'quotes' \"", b"", b"ascii bytes", b"\x00\xff\r\n", 0, -1, 10**50, 1.25, float("inf"), -0.0,
        True, False, None, 3 + 4j, (1, "a"), (), [], {}, {"k": 1, 2: "two", (1, 2): [3], "new\nline": 4},
        {1, 2, 3}, frozenset({"a"}), [[[]]],
    ],
)
def test_plain_values_round_trip_exactly(tmp_path, value):
    app = roundtrip(tmp_path, Application("v"))
    app.value = value
    loaded = roundtrip(tmp_path, app)
    assert loaded.value == value and type(loaded.value) is type(value)
    assert shape(loaded.value) == shape(value)


def test_nan_round_trips(tmp_path):
    app = Application("v")
    app.value = float("nan")
    assert roundtrip(tmp_path, app).value != roundtrip(tmp_path, app).value  # nan, not a number equal to itself


def test_shared_objects_and_cycles_survive(tmp_path, allow_tests):
    shared = {"count": 1}
    app = Application("demo")
    a, b = Holder(config=shared), Holder(config=shared)
    a.setName("a")
    b.setName("b")
    a.setServiceParent(app)
    b.setServiceParent(app)
    a.peer, b.peer = b, a
    loop: list = []
    loop.append(loop)
    app.loop = loop
    loaded = roundtrip(tmp_path, app)
    la, lb = loaded.getServiceNamed("a"), loaded.getServiceNamed("b")
    assert la.config is lb.config and la.config == shared
    assert la.peer is lb and lb.peer is la
    assert loaded.loop[0] is loaded.loop
    assert shape(loaded) == shape(app)


def test_enums_ordered_dicts_dates_and_methods_round_trip(tmp_path, allow_tests):
    holder = Holder(
        color=Color.BLUE,
        ordered=collections.OrderedDict([("b", 1), ("a", 2)]),
        counts=collections.defaultdict(list, {"x": [1]}),
        when=datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC),
        pattern=re.compile(r"\d+", re.I),
        where=Path("/srv/quotes"),
    )
    holder.callback = holder.tick
    timer = TimerService(60, holder.tick)
    app = Application("demo")
    holder.setName("holder")
    holder.setServiceParent(app)
    timer.setName("timer")
    timer.setServiceParent(app)
    loaded = roundtrip(tmp_path, app)
    h = loaded.getServiceNamed("holder")
    assert h.color is Color.BLUE
    assert list(h.ordered.items()) == [("b", 1), ("a", 2)] and type(h.ordered) is collections.OrderedDict
    assert h.counts["x"] == [1] and h.counts["new"] == []
    assert h.when == holder.when and h.pattern.pattern == r"\d+" and h.pattern.flags & re.I
    assert h.where == Path("/srv/quotes")
    assert h.callback.__self__ is h
    func = loaded.getServiceNamed("timer").call[0]
    func()
    assert h.ticked


def test_slots_and_setstate_are_honoured(tmp_path):
    from tapster.plugins.quoters import FortuneQuoter

    app = Application("demo")
    quoter = FortuneQuoter(["/nonexistent"])
    quoter._quotes = ["cached"]  # dropped by __getstate__, reset by __setstate__
    app.quoter = quoter
    loaded = roundtrip(tmp_path, app)
    assert loaded.quoter.filenames == ["/nonexistent"] and loaded.quoter._quotes is None


# -- refusing to save -------------------------------------------------------------


def test_socket_is_refused_and_the_old_file_is_untouched(tmp_path):
    path = tmp_path / "app.tax"
    persist.save(build("qotd", ["-p", "8007"]), str(path))
    before = path.read_bytes()
    factory = SocketFactory()
    app = Application("demo")
    TCPServer(0, factory).setServiceParent(app)
    try:
        with pytest.raises(
            PersistError, match=r"^application\.services\[0\]\.args\[1\]\.sock: a socket\.socket cannot be saved"
        ):
            persist.save(app, str(path))
    finally:
        factory.sock.close()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["app.tax"]


# -- hostile files ----------------------------------------------------------------


def test_os_system_as_a_call_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "PWNED"
    body = f'<call module="os" name="system"><args><str>touch {marker}</str></args></call>'
    with pytest.raises(PersistError) as info:
        load_text(tmp_path, document(body))
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'hostile.tax'} line 3: os.system is not allowed in an XML application")
    assert "declare safe" in message and "\n" not in message
    assert not marker.exists()


@pytest.mark.parametrize(
    "body, named",
    [
        ('<global module="os" name="system" />', "os.system"),
        ('<global module="builtins" name="eval" />', "builtins.eval"),
        ('<instance module="subprocess" class="Popen" />', "subprocess.Popen"),
        ('<call module="builtins" name="exec"><args><str>1</str></args></call>', "builtins.exec"),
        ('<global module="tapster.core.plugin" name="lru_cache" />', "tapster.core.plugin.lru_cache is not allowed"),
        ('<global module="tapster.core.testing" name="BytesIO" />', "BytesIO"),
        ('<global module="tapster.core.persist" name="os.system" />', "tapster.core.persist.os.system is not allowed"),
        ('<global module="tapster.core.service" name="Service.__subclasses__" />', "special attribute"),
        ('<global module="tapster.core.service" name="__builtins__" />', "special attribute"),
        ('<call module="tapster.core.internet" name="TCPServer"><args><int>1</int></args></call>', "may not be called"),
        (
            '<call module="tapster.core.persist" name="atomic_write">'
            "<args><str>x</str><bytes>eA==</bytes></args></call>",
            "tapster.core.persist.atomic_write is not allowed",
        ),
        (
            '<global module="tapster.core.persist" name="atomic_write" />',
            "tapster.core.persist.atomic_write is not allowed",
        ),
        (
            '<call module="functools" name="partial">'
            '<args><global module="tapster.core.persist" name="save" /></args></call>',
            "tapster.core.persist.save is not allowed",
        ),
        (
            '<instance module="tapster.plugins.qotd" class="makeService" />',
            "tapster.plugins.qotd.makeService is not allowed",
        ),
        (
            '<instance module="tapster.plugins.qotd" class="ServerFactory" />',
            "tapster.plugins.qotd.ServerFactory is not allowed",
        ),
        ('<global module="os.path" name="join" />', "os.path.join"),
        ('<global module="core" name="os; import os" />', "not a valid import path"),
        ('<method name="__class__"><str>x</str></method>', "not allowed"),
    ],
)
def test_names_outside_the_allow_list_are_refused(tmp_path, body, named):
    with pytest.raises(PersistError, match=re.escape(named)):
        load_text(tmp_path, document(f"<list>{body}</list>"))


def test_module_of_an_uninstalled_plugin_is_never_imported(tmp_path):
    with pytest.raises(PersistError, match="not allowed"):
        load_text(tmp_path, document('<instance module="this" class="X" />'))
    import sys

    assert "this" not in sys.modules  # importing it would print the Zen of Python


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<tapster-application format="1"><str>&lol3;</str></tapster-application>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE app [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<tapster-application format="1"><str>&secret;</str></tapster-application>
"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL_ENTITY, BILLION_LAUGHS.replace("DOCTYPE", "doctype")])
def test_doctype_and_entities_are_refused_before_parsing(tmp_path, text):
    with pytest.raises(PersistError, match="refusing an XML application with a DOCTYPE or ENTITY declaration"):
        load_text(tmp_path, text)


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_the_parser_refuses_doctypes_on_its_own_too(tmp_path, monkeypatch, text):
    """Defence in depth: with the text check disabled, expat's handlers still refuse."""
    monkeypatch.setattr(_xml_format, "_refuse_declarations", lambda text, filename: None)
    with pytest.raises(PersistError, match="refusing an XML application with a DOCTYPE, entity or notation"):
        _xml_format.load(text.encode(), "hostile.tax")


def test_doctype_file_is_recognised_as_xml_so_its_refusal_is_clear(tmp_path):
    with pytest.raises(PersistError, match="DOCTYPE"):
        load_text(tmp_path, BILLION_LAUGHS, name="hostile.tap")


@pytest.mark.parametrize(
    "data, message",
    [
        (b'<?xml version="1.0" encoding="utf-16"?><tapster-application format="1"/>', "encoding 'utf-16'"),
        (b'<?xml version="1.0"?><tapster-application format="1"><str>\xff</str></tapster-application>', "not UTF-8"),
        (document("<list><str>x</list>").encode(), "not well-formed XML at line 3"),
        (document("<banana />").encode(), "line 3: unknown element <banana>"),
        (document('<list><ref id="9" /></list>').encode(), "refers to nothing defined before it"),
        (document('<list id="1"><list id="1" /></list>').encode(), "defined twice"),
        (document("<int>twelve</int>").encode(), "cannot rebuild <int>"),
        (document("<str /><str />").encode(), "exactly one element"),
        (b'<?xml version="1.0"?><application format="1"><none/></application>', "root element is <application>"),
        (b'<?xml version="1.0"?><tapster-application format="9"><none/></tapster-application>', "format '9'"),
        (b'<?xml version="1.0"?><tapster-application><none/></tapster-application>', "no format attribute"),
        (
            document(
                '<instance module="tapster.core.service" class="Service">'
                '<attr name="__class__"><none /></attr></instance>'
            ).encode(),
            "special attribute",
        ),
    ],
)
def test_bad_files_are_one_clear_line(tmp_path, data, message):
    path = tmp_path / "bad.tax"
    path.write_bytes(data)
    with pytest.raises(PersistError) as info:
        persist.load(str(path))
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(str(path))


def test_a_loaded_non_service_is_refused(tmp_path):
    with pytest.raises(PersistError, match="holds a list, not an application"):
        load_text(tmp_path, document("<list />"), name="list.tax")


def test_sniff_recognises_only_tapster_xml():
    assert _xml_format.sniff(b'<?xml version="1.0"?>\n<tapster-application format="1">')
    assert _xml_format.sniff(b"\xef\xbb\xbf<?xml version='1.0'?><tapster-application>")
    assert not _xml_format.sniff(b'<?xml version="1.0"?><html>')
    assert not _xml_format.sniff(b"\x80\x05pickle")
    assert not _xml_format.sniff(b"<tapster-application>")  # no declaration: not ours


def test_xml_is_listed_as_a_safe_format():
    spec = persist.format_for("xml")
    assert (spec.name, spec.extension, spec.safe) == ("xml", "tax", True)
    assert persist.format_for(filename="x.tax") is spec


def test_plugin_options_object_round_trips_with_its_items(tmp_path):
    """usage.Options is a dict with its own __reduce_ex__ (items, then __setstate__ rebuilds its tables)."""
    config = load_plugin("qotd").options()
    config.parseOptions(["-p", "8009", "-s", "kept"])
    app = Application("demo")
    app.config = config
    loaded = roundtrip(tmp_path, app).config
    assert type(loaded) is type(config)
    assert dict(loaded) == dict(config)
    assert loaded["static"] == "kept" and loaded.opts is loaded


def test_running_a_loaded_timer_cannot_be_handed_a_core_function(tmp_path):
    """A TimerService calls what it holds: a file may give it plugin code, never core's file writers."""
    body = (
        '<instance module="tapster.core.internet" class="TimerService">'
        '<attr name="step"><int>1</int></attr>'
        '<attr name="call"><tuple><global module="tapster.core.persist" name="atomic_write" />'
        f'<tuple><str>{tmp_path / "written"}</str><bytes encoding="ascii">x</bytes></tuple><dict /></tuple></attr>'
        "</instance>"
    )
    with pytest.raises(PersistError, match=r"tapster.core.persist.atomic_write is not allowed in an XML application"):
        load_text(tmp_path, document(body))
    assert not (tmp_path / "written").exists()


def test_an_application_its_loader_would_refuse_is_refused_when_saving(tmp_path):
    """Classes outside the allow-list fail at mktap time, not at the later twistd -f."""
    path = tmp_path / "app.tax"
    app = Application("demo")
    Holder(thing=1).setServiceParent(app)  # defined in tests/, which is no plugin's package
    with pytest.raises(PersistError, match=r"cannot save this application as XML: tests\.core\.test_xml_format\.Holder "
                                           r"is not allowed .*; save it as pickle or source instead"):
        persist.save(app, str(path))
    assert not path.exists()
    app = Application("demo")
    TimerService(1, persist.atomic_write, "somewhere", b"x").setServiceParent(app)
    with pytest.raises(PersistError, match=r"tapster\.core\.\S*atomic_write is not allowed in an XML application"):
        _xml_format.dump(app)
