"""Bad input: one clear line on stderr, a non-zero status, no traceback, nothing half-written."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.e2e._e2e import assert_one_clean_line, free_port, run


def test_unknown_plugin_names_it_and_suggests(tmp_path: Path) -> None:
    r = run("mktap", "qtod", "--port", "8007", cwd=tmp_path)
    assert_one_clean_line(r)
    assert r.returncode == 2
    assert "'qtod'" in r.stderr and "did you mean 'qotd'" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_port_value_is_refused_by_mktap(tmp_path: Path) -> None:
    r = run("mktap", "qotd", "--port", "notaport", cwd=tmp_path)
    assert_one_clean_line(r)
    assert r.returncode == 2
    assert "notaport" in r.stderr and "port" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_plugin_option(tmp_path: Path) -> None:
    r = run("mktap", "qotd", "--prot", "8007", cwd=tmp_path)
    assert_one_clean_line(r)
    assert "--prot" in r.stderr and "--port" in r.stderr  # names it and suggests the right one


def test_missing_fortune_file(tmp_path: Path) -> None:
    r = run("mktap", "qotd", "--fortune", "nope.txt", cwd=tmp_path)
    assert_one_clean_line(r)
    assert "nope.txt" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_mktap_without_plugin_but_with_options(tmp_path: Path) -> None:
    r = run("mktap", "-n", "x", cwd=tmp_path)
    assert_one_clean_line(r)
    assert r.returncode == 2


def test_mktap_unwritable_output_keeps_nothing(tmp_path: Path) -> None:
    r = run("mktap", "-o", str(tmp_path / "no" / "such" / "dir" / "x.tap"), "qotd", cwd=tmp_path)
    assert_one_clean_line(r)
    assert r.returncode == 1
    assert "x.tap" in r.stderr


def test_missing_tap_file(tmp_path: Path) -> None:
    r = run("twistd", "-n", "-f", "missing.tap", cwd=tmp_path)
    assert_one_clean_line(r)
    assert r.returncode == 1
    assert "missing.tap" in r.stderr


def test_corrupt_tap_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    bad = tmp_path / "qotd.tap"
    bad.write_bytes(b"\x80\x05this is not a pickle at all")
    r = run("twistd", "-n", "-f", "qotd.tap", cwd=tmp_path)
    assert_one_clean_line(r)
    assert "qotd.tap" in r.stderr
    assert bad.read_bytes() == b"\x80\x05this is not a pickle at all"


def test_text_file_is_not_an_application(tmp_path: Path) -> None:
    (tmp_path / "notes.tap").write_text("hello\n")
    r = run("twistd", "-n", "-f", "notes.tap", cwd=tmp_path)
    assert_one_clean_line(r)
    assert "notes.tap" in r.stderr


def test_port_in_use_names_the_address(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        assert run("mktap", "qotd", "-p", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path).returncode == 0
        r = run("twistd", "-n", "--pidfile", "x.pid", "-f", "qotd.tap", cwd=tmp_path)
    assert_one_clean_line(r)
    assert r.returncode == 1
    assert f"127.0.0.1:{port}" in r.stderr and "in use" in r.stderr
    assert not (tmp_path / "x.pid").exists()
    assert not (tmp_path / "qotd-shutdown.tap").exists()


def test_twistd_without_file_is_a_usage_error(tmp_path: Path) -> None:
    r = run("twistd", "-n", cwd=tmp_path)
    assert_one_clean_line(r)
    assert r.returncode == 2
    assert "-f" in r.stderr


def test_unknown_reactor(tmp_path: Path) -> None:
    port = free_port()
    run("mktap", "qotd", "-p", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    r = run("twistd", "-n", "-r", "tornado", "-f", "qotd.tap", cwd=tmp_path)
    assert_one_clean_line(r)
    assert "tornado" in r.stderr and "asyncio" in r.stderr


def test_pidfile_held_by_a_running_twistd_is_refused(tmp_path: Path, twistd) -> None:
    from tests.e2e._e2e import wait_for_port

    port = free_port()
    run("mktap", "qotd", "-p", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    first = twistd("-n", "-o", "--pidfile", "t.pid", "-f", "qotd.tap")
    wait_for_port(port, first.proc)
    second = run("twistd", "-n", "-o", "--pidfile", "t.pid", "-f", "qotd.tap", cwd=tmp_path)
    assert_one_clean_line(second)
    assert f"already running as pid {first.proc.pid}" in second.stderr
    assert (tmp_path / "t.pid").read_text().strip() == str(first.proc.pid)  # untouched
    assert first.stop() == 0


def test_stale_pidfile_is_taken_over(tmp_path: Path, twistd) -> None:
    from tests.e2e._e2e import wait_for_port

    (tmp_path / "t.pid").write_text("999999\n")  # left by a crash: nobody holds its lock
    port = free_port()
    run("mktap", "qotd", "-p", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    server = twistd("-n", "-o", "--pidfile", "t.pid", "-f", "qotd.tap")
    wait_for_port(port, server.proc)
    assert (tmp_path / "t.pid").read_text().strip() == str(server.proc.pid)
    assert server.stop() == 0
