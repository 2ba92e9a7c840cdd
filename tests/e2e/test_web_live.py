"""Live reconfiguration of a running web server from the telnet console, kept in web-shutdown.tap."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e._e2e import free_port, nc, run, wait_for_port

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (.ci/run installs it)")

PASSWORD = "Tr0ub4dor&3"
APP = '''
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"from wsgi"]
'''


def curl_headers_and_body(url: str) -> bytes:
    return subprocess.run(["curl", "-sS", "--max-time", "10", "-D", "-", url], capture_output=True,
                          timeout=20).stdout


def console(port: int, *statements: str) -> str:
    lines = ["admin", PASSWORD, *statements, "exit()"]
    return nc(port, ("\n".join(lines) + "\n").encode()).decode("utf-8", "replace")


def test_directory_header_and_app_changed_live_and_kept(tmp_path: Path, twistd) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("first")
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "index.html").write_text("second")
    (tmp_path / "liveapp.py").write_text(APP)
    (tmp_path / "admin.pw").write_text(PASSWORD + "\n")
    port, telnet_port = free_port(), free_port()
    assert run("mktap", "web", "--path", "www", "--listen", f"tcp:{port}:interface=127.0.0.1",
               cwd=tmp_path).returncode == 0
    added = run("mktap", "--append", "web.tap", "telnet", "--port", str(telnet_port), "--username", "admin",
                "--password-file", "admin.pw", cwd=tmp_path)
    assert added.returncode == 0, added.stderr

    server = twistd("-n", "-f", "web.tap")
    wait_for_port(port, server.proc)
    wait_for_port(telnet_port, server.proc)
    url = f"http://127.0.0.1:{port}/"
    assert curl_headers_and_body(url).endswith(b"first")

    out = console(telnet_port, "web = application.getServiceNamed('web')", "web.factory.resource.path = 'static'",
                  "web.factory.addHeader('X-Live', 'yes')")
    assert "Traceback" not in out, out
    got = curl_headers_and_body(url)
    assert got.endswith(b"second") and b"X-Live: yes" in got
    assert server.stop() == 0, server.stderr

    # The shutdown save kept both changes; running it again serves them.
    again = twistd("-n", "-o", "-f", "web-shutdown.tap")
    wait_for_port(port, again.proc)
    got = curl_headers_and_body(url)
    assert got.endswith(b"second") and b"X-Live: yes" in got

    # Swap the root resource for a WSGI application, live.
    out = console(telnet_port, "from tapster.plugins.web import WSGIResource",
                  "application.getServiceNamed('web').factory.resource = WSGIResource('liveapp.application')")
    assert "Traceback" not in out, out
    assert curl_headers_and_body(url).endswith(b"from wsgi")
    assert again.stop() == 0, again.stderr


def test_the_served_directory_changed_over_real_telnet(tmp_path: Path, twistd) -> None:
    """The seeds' workflow with Debian's telnet in a terminal: log in, change the directory, see it served."""
    from tests.e2e._terminal import Terminal, tool
    from tests.e2e.test_telnet_console import login, type_statement

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("first")
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "index.html").write_text("second")
    (tmp_path / "admin.pw").write_text(PASSWORD + "\n")
    port, telnet_port = free_port(), free_port()
    assert run("mktap", "web", "--path", "www", "--listen", f"tcp:{port}:interface=127.0.0.1",
               cwd=tmp_path).returncode == 0
    assert run("mktap", "--append", "web.tap", "telnet", "--port", str(telnet_port), "--username", "admin",
               "--password-file", "admin.pw", cwd=tmp_path).returncode == 0
    server = twistd("-n", "-f", "web.tap")
    wait_for_port(telnet_port, server.proc)
    url = f"http://127.0.0.1:{port}/"
    assert curl_headers_and_body(url).endswith(b"first")
    term = Terminal([tool("telnet", "telnet"), "127.0.0.1", str(telnet_port)])
    try:
        login(term, PASSWORD)
        out = type_statement(term, "application.getServiceNamed('web').factory.resource.path = 'static'")
        assert "Traceback" not in out, out
        assert curl_headers_and_body(url).endswith(b"second")  # live, for the next request
        assert "'static'" in type_statement(term, "application.getServiceNamed('web').factory.resource.path")
        term.sendline("exit()")
        term.expect("Connection closed by foreign host.")
    finally:
        term.close()
    assert server.stop() == 0, server.stderr
    again = twistd("-n", "-o", "-f", "web-shutdown.tap")
    wait_for_port(port, again.proc)
    assert curl_headers_and_body(url).endswith(b"second")  # kept in web-shutdown.tap
    assert again.stop() == 0, again.stderr
