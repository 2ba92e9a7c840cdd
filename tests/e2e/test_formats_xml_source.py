"""End to end: mktap -t xml / -t source builds, twistd runs the file, a client gets the quote.

Hostile XML runs nothing.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e._e2e import assert_one_clean_line, free_port, nc, run, wait_for_port


def endpoint(port: int) -> str:
    return f"tcp:{port}:interface=127.0.0.1"


@pytest.mark.parametrize("kind, ext, first", [("xml", "tax", b"<?xml"), ("source", "tas", b"# tapster application")])
def test_built_file_serves_the_quote(tmp_path: Path, twistd, kind: str, ext: str, first: bytes) -> None:
    port = free_port()
    made = run("mktap", "-t", kind, "qotd", "-p", endpoint(port), "-s", f"Quote from a .{ext}", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    path = tmp_path / f"qotd.{ext}"
    assert path.read_bytes().startswith(first)

    server = twistd("-n", "-o", "-f", f"qotd.{ext}")
    wait_for_port(port, server.proc)
    assert nc(port) == f"Quote from a .{ext}\r\n".encode()
    assert server.stop() == 0, server.stderr
    assert not (tmp_path / f"qotd-shutdown.{ext}").exists()  # -o: no shutdown save


def test_echo_from_source_file_echoes(tmp_path: Path, twistd) -> None:
    port = free_port()
    assert run("mktap", "-t", "source", "echo", "-p", endpoint(port), cwd=tmp_path).returncode == 0
    server = twistd("-n", "-o", "-f", "echo.tas")
    wait_for_port(port, server.proc)
    assert nc(port, b"ping\n") == b"ping\n"
    assert server.stop() == 0, server.stderr


@pytest.mark.parametrize("kind, ext, markers", [
    ("xml", "tax", ['<tapster-application format="1">', "<str>Round trip</str>"]),
    ("source", "tas", ["# tapster application source", "'quote': 'Round trip'"]),
])
def test_sigterm_saves_the_shutdown_file_in_the_same_format_and_it_runs_again(
        tmp_path: Path, twistd, kind: str, ext: str, markers: list[str]) -> None:
    port = free_port()
    assert run("mktap", "-t", kind, "qotd", "-p", endpoint(port), "-s", "Round trip", cwd=tmp_path).returncode == 0
    server = twistd("-n", "-f", f"qotd.{ext}")
    wait_for_port(port, server.proc)
    assert nc(port) == b"Round trip\r\n"
    assert server.stop(signal.SIGTERM) == 0, server.stderr

    shutdown = tmp_path / f"qotd-shutdown.{ext}"
    assert shutdown.is_file(), server.stdout + server.stderr
    text = shutdown.read_text()
    assert all(marker in text for marker in markers), text
    assert "running" not in text  # saved stopped

    again = twistd("-n", "-o", "-f", f"qotd-shutdown.{ext}")
    wait_for_port(port, again.proc)
    assert nc(port) == b"Round trip\r\n"
    assert again.stop() == 0, again.stderr


HOSTILE_CALL = """<?xml version="1.0" encoding="utf-8"?>
<tapster-application format="1">
  <call module="os" name="system"><args><str>touch {marker}</str></args></call>
</tapster-application>
"""

HOSTILE_ENTITIES = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<tapster-application format="1">
  <call module="os" name="system"><args><str>touch {marker}&lol3;</str></args></call>
</tapster-application>
"""


@pytest.mark.parametrize("template, says", [(HOSTILE_CALL, "os.system is not allowed"), (HOSTILE_ENTITIES, "DOCTYPE")])
def test_hostile_xml_is_refused_and_nothing_runs(tmp_path: Path, template: str, says: str) -> None:
    marker = tmp_path / "PWNED"
    (tmp_path / "hostile.tax").write_text(template.format(marker=marker))
    result = run("twistd", "-n", "-f", "hostile.tax", cwd=tmp_path)
    assert_one_clean_line(result)
    assert says in result.stderr and "hostile.tax" in result.stderr
    assert not marker.exists()
    assert not list(tmp_path.glob("PWNED*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.tax"]  # no pid file, log or shutdown file


def test_a_file_naming_a_missing_class_is_one_clear_line(tmp_path: Path) -> None:
    """A hand-edited .tax naming a class its plugin lacks: one line naming it, and the file is left as it was."""
    path = tmp_path / "broken.tax"
    path.write_text(HOSTILE_CALL.format(marker=tmp_path / "x").replace('module="os" name="system"',
                                                                        'module="tapster.plugins.qotd" name="Nope"'))
    before = path.read_bytes()
    result = run("twistd", "-n", "-f", "broken.tax", cwd=tmp_path)
    assert_one_clean_line(result)
    assert "tapster.plugins.qotd.Nope is not allowed in an XML application" in result.stderr
    assert path.read_bytes() == before
