"""The newcomer's path: mktap qotd → twistd -n -f qotd.tap → a quote over TCP → SIGTERM → shutdown file."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tapster.core import persist
from tests.e2e._e2e import command, free_port, nc, run, wait_for_port


def endpoint(port: int) -> str:
    return f"tcp:{port}:interface=127.0.0.1"


def test_static_quote_served_then_shutdown_file_runs_again(tmp_path: Path, twistd) -> None:
    port = free_port()
    made = run("mktap", "qotd", "--port", endpoint(port), "--static", "Hello from tapster", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "qotd.tap").is_file()

    server = twistd("-n", "-f", "qotd.tap")
    wait_for_port(port, server.proc)
    assert nc(port) == b"Hello from tapster\r\n"
    assert nc(port) == b"Hello from tapster\r\n"  # every connection gets a quote

    assert server.stop(signal.SIGTERM) == 0, server.stderr
    shutdown = tmp_path / "qotd-shutdown.tap"
    assert shutdown.is_file(), server.stdout
    assert "qotd-shutdown.tap" in server.stdout

    again = twistd("-n", "-o", "-f", "qotd-shutdown.tap")
    wait_for_port(port, again.proc)
    assert nc(port) == b"Hello from tapster\r\n"
    assert again.stop(signal.SIGINT) == 0, again.stderr


def test_default_quote_is_the_tutorials(tmp_path: Path, twistd) -> None:
    port = free_port()
    assert run("mktap", "qotd", "-p", endpoint(port), cwd=tmp_path).returncode == 0
    server = twistd("-n", "-o", "-f", "qotd.tap")
    wait_for_port(port, server.proc)
    assert nc(port) == b"An apple a day keeps the doctor away.\r\n"
    assert server.stop() == 0


def test_fortune_files_give_quotes_from_the_files(tmp_path: Path, twistd) -> None:
    fortunes = tmp_path / "fortunes"
    fortunes.write_text("First quote.\n%\nSecond quote,\non two lines.\n%\n")
    port = free_port()
    made = run("mktap", "qotd", "-p", endpoint(port), "--fortune", str(fortunes), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    server = twistd("-n", "-o", "-f", "qotd.tap")
    wait_for_port(port, server.proc)
    seen = {nc(port) for _ in range(30)}
    assert seen <= {b"First quote.\r\n", b"Second quote,\r\non two lines.\r\n"}
    assert len(seen) == 2  # random choice over 30 tries: both come up (p of failure ~ 2e-9)
    assert server.stop() == 0


def test_saved_application_holds_the_plugins_service(tmp_path: Path) -> None:
    port = free_port()
    made = run(
        "mktap", "-n", "myapp", "-u", "1000", "-g", "nogroup", "qotd", "-p", endpoint(port), "-s", "x", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    app = persist.load(str(tmp_path / "myapp.tap"))
    assert app.name == "myapp" and app.processName == "myapp"
    assert (app.uid, app.gid) == (1000, "nogroup")
    service = app.getServiceNamed("qotd")
    assert type(service).__name__ == "TCPServer"
    assert service.parent is app
    assert service.args[0] == port
    assert service.args[1].quoter.quote == "x"
    assert service.kwargs.get("interface") == "127.0.0.1"


def test_plugin_options_after_the_plugin_name_are_the_plugins(tmp_path: Path) -> None:
    r = run("mktap", "qotd", "-n", "myapp", cwd=tmp_path)
    assert r.returncode == 2
    assert "-n" in r.stderr and "Traceback" not in r.stderr


def test_python_dash_m_entry_points(tmp_path: Path) -> None:
    for module in ("tapster.mktap", "tapster.twistd"):
        p = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith(f"Usage: {module.rpartition('.')[2]}")
    assert command("mktap") and command("twistd")


def test_pidfile_in_foreground_only_when_asked(tmp_path: Path, twistd) -> None:
    port = free_port()
    run("mktap", "qotd", "-p", endpoint(port), cwd=tmp_path)
    server = twistd("-n", "-o", "--pidfile", "run.pid", "-f", "qotd.tap")
    wait_for_port(port, server.proc)
    assert (tmp_path / "run.pid").read_text().strip() == str(server.proc.pid)
    assert not (tmp_path / "twistd.pid").exists()
    assert server.stop() == 0
    assert not (tmp_path / "run.pid").exists()
    assert not (tmp_path / "qotd-shutdown.tap").exists()  # -o: no shutdown save


def test_asyncio_reactor_serves_too(tmp_path: Path, twistd) -> None:
    port = free_port()
    run("mktap", "qotd", "-p", endpoint(port), "-s", "plain asyncio", cwd=tmp_path)
    server = twistd("-n", "-o", "-r", "asyncio", "-f", "qotd.tap")
    wait_for_port(port, server.proc)
    assert nc(port) == b"plain asyncio\r\n"
    assert server.stop() == 0
    assert "reactor asyncio" in server.stdout
