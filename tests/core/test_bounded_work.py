"""A few kilobytes from a stranger never buy minutes of work, gigabytes of memory or megabytes of message.

Each hostile file is generated here and must be refused by ``persist.load``
with one line that names the file, is at most a few hundred characters long,
and comes within a second or two (the budget is in
``tapster.core._persist.limits``).
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from tapster.core import persist
from tapster.core._persist.limits import MAX_WEIGHT, Weigher, brief, cap
from tapster.core.errors import PersistError, ValueTooLarge

HEAD = "<?xml version='1.0' encoding='utf-8'?>\n<tapster-application format=\"1\">\n"
TAIL = "\n</tapster-application>\n"


def app_with(name_xml: str, extra_state: str = "") -> str:
    return (HEAD + '<instance id="app" module="tapster.core.service" class="Application">'
            f'<attr name="name">{name_xml}</attr>'
            '<attr name="services"><list /></attr><attr name="namedServices"><dict /></attr>'
            f"{extra_state}</instance>" + TAIL)


def nested_shared(depth: int) -> str:
    """Definitions first, then references: t_k = (t_{k-1}, t_{k-1})."""
    parts = ['<tuple id="t0"><str>leaf</str><str>leaf</str></tuple>']
    for i in range(1, depth):
        parts.append(f'<tuple id="t{i}"><ref id="t{i - 1}" /><ref id="t{i - 1}" /></tuple>')
    return "<list>" + "".join(parts) + "</list>"


def refused(tmp_path: Path, text: str | bytes, name: str = "hostile.tax", seconds: float = 3.0) -> str:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    start = time.monotonic()
    with pytest.raises(PersistError) as info:
        persist.load(str(path))
    elapsed = time.monotonic() - start
    message = str(info.value)
    assert elapsed < seconds, f"took {elapsed:.1f}s: {message[:200]}"
    assert "\n" not in message and len(message) < 1000, message[:300]
    assert message.startswith(str(path)), message[:200]
    return message


# -- XML -------------------------------------------------------------------------------


def test_a_name_made_of_a_billion_shared_leaves(tmp_path: Path) -> None:
    text = app_with(nested_shared(31))  # 2**31 leaves in about 2 KB
    assert len(text) < 3000
    assert "more than 1000000 parts" in refused(tmp_path, text)


def test_a_frozenset_of_shared_tuples_is_weighed_before_it_is_hashed(tmp_path: Path) -> None:
    chain = nested_shared(29).removeprefix("<list>").removesuffix("</list>")
    body = f'<frozenset>{chain}</frozenset>'
    assert "more than 1000000 parts" in refused(tmp_path, app_with("<str>x</str>", f'<attr name="x">{body}</attr>'))


def test_dict_keys_are_weighed_before_they_are_hashed(tmp_path: Path) -> None:
    chain = nested_shared(29).removeprefix("<list>").removesuffix("</list>")
    body = f'<list>{chain}<dict><item><ref id="t28" /><int>1</int></item></dict></list>'
    assert "more than 1000000 parts" in refused(tmp_path, app_with("<str>x</str>", f'<attr name="x">{body}</attr>'))


@pytest.mark.parametrize("call, why", [
    ('<call module="builtins" name="bytearray"><args><int>1099511627776</int></args></call>', "would allocate"),
    ('<call module="builtins" name="bytes"><args><int>1099511627776</int></args></call>', "would allocate"),
    ('<call module="builtins" name="list"><args><call module="builtins" name="range"><args><int>100000000</int>'
     "</args></call></args></call>", "would iterate over 100000000 items"),
    ('<call module="fractions" name="Fraction"><args><str>1e20000000</str></args></call>', "exponent"),
    ('<call module="decimal" name="Decimal"><args><str>1E+999999999</str></args></call>', "exponent"),
])
def test_plain_constructors_are_not_handed_unbounded_work(tmp_path: Path, call: str, why: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    message = refused(tmp_path, app_with("<str>x</str>", f'<attr name="x">{call}</attr>'))
    assert why in message and "refusing to call" in message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: nothing big was built


def test_an_8_mb_attribute_is_not_echoed(tmp_path: Path) -> None:
    huge = "A" * (8 * 1024 * 1024)
    text = HEAD + f'<instance module="tapster.core.service" class="{huge}" />' + TAIL
    message = refused(tmp_path, text)
    assert "AAAA" in message and len(message) < 1000


def test_a_bad_boolean_is_quoted_briefly(tmp_path: Path) -> None:
    bad = "\x1b[2J" * 5000
    message = refused(tmp_path, app_with("<str>x</str>", f"<attr name=\"x\"><bool>{bad}</bool></attr>"))
    assert "\x1b" not in message


def test_legitimate_sharing_is_fine(tmp_path: Path) -> None:
    """An application whose services all share one object (a console, a config) is not 'heavy'."""
    from tapster.core.internet import TCPServer
    from tapster.core.protocol import Factory
    from tapster.core.service import Application

    app = Application("shared")
    factory = Factory()
    factory.table = {f"key{i}": "v" * 50 for i in range(200)}  # type: ignore[attr-defined]
    for i in range(300):
        server = TCPServer(0, factory)
        server.setName(f"s{i}")
        server.setServiceParent(app)
    path = tmp_path / "shared.tax"
    persist.save(app, str(path))
    assert len(list(persist.load(str(path)))) == 300


# -- YAML -------------------------------------------------------------------------------


def alias_bomb(levels: int = 9) -> str:
    """A YAML flow list defining anchors level by level: 9**9 = 387 million leaves, in about 1 KB."""
    items = ["&a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    for i in range(1, levels):
        items.append(f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "[" + ", ".join(items) + "]"


@pytest.mark.parametrize("where", ["name", "uid", "services", "args", "options"])
def test_a_yaml_alias_bomb_anywhere(tmp_path: Path, where: str) -> None:
    bomb = alias_bomb()
    assert len(bomb) < 1200
    document = {
        "name": f"name: {bomb}\nservices: []",
        "uid": f"name: x\nuid: {bomb}\nservices: []",
        "services": f"name: x\nservices: {bomb}",
        "args": f"name: x\nservices:\n- plugin: qotd\n  args: {bomb}",
        "options": f"name: x\nservices:\n- plugin: qotd\n  options: {{static: {bomb}}}",
    }[where]
    message = refused(tmp_path, "tapster: 1\n" + document + "\n", "bomb.yaml")
    assert "more than 1000000 parts" in message


def test_yaml_nested_a_hundred_thousand_deep(tmp_path: Path) -> None:
    text = "tapster: 1\nname: x\nservices: " + "[" * 100_000 + "]" * 100_000 + "\n"
    assert "nested too deeply" in refused(tmp_path, text, "deep.yaml", seconds=10)


@pytest.mark.parametrize("line", ["name: 2001-13-45", "uid: " + "9" * 5000, "name: !!timestamp x", "name: !!bool x",
                                  "name: !!int 0x", "name: !!float abc"])
def test_yaml_values_the_resolver_cannot_make(tmp_path: Path, line: str) -> None:
    refused(tmp_path, f"tapster: 1\n{line}\nservices: []\n", "odd.yaml")


def test_random_bytes_named_yaml_are_one_line(tmp_path: Path) -> None:
    import random

    rng = random.Random(5)
    for n in range(20):
        refused(tmp_path, bytes(rng.randrange(256) for _ in range(300)), f"noise{n}.yaml")


def test_an_option_name_with_terminal_escapes_is_shown_escaped(tmp_path: Path) -> None:
    text = "tapster: 1\nname: x\nservices:\n- plugin: qotd\n  options: {\"\\e[2J\\e[31mport\": 1}\n"
    message = refused(tmp_path, text, "escape.yaml")
    assert "\x1b" not in message and "port" in message


# -- the mechanism -----------------------------------------------------------------------


def test_the_weigher_is_linear_in_distinct_objects() -> None:
    value: object = "leaf"
    for _ in range(200):  # 2**200 leaves as a tree
        value = (value, value)
    start = time.monotonic()
    with pytest.raises(ValueTooLarge):
        Weigher().weigh(value)
    assert time.monotonic() - start < 0.5
    assert Weigher().weigh(list(range(1000))) == 1001


def test_the_weigher_survives_cycles_and_depth() -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    assert Weigher().weigh(cycle) == 2
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert Weigher(limit=10 * MAX_WEIGHT).weigh(deep) == 100_001


def test_brief_and_cap_bound_and_escape() -> None:
    assert len(brief("x" * 10_000_000)) <= 200
    assert brief("\x1b[31m") == repr("\x1b[31m")
    assert cap("a\nb\x07", 100) == "a\\nb\\x07"
    assert len(cap("y" * 5000)) == 400
