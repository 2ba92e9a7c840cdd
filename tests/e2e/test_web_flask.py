"""A real Flask application served by ``twistd web --wsgi`` and asked with curl (issue 11, item 4)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e._e2e import free_port, wait_for_port

pytest.importorskip("flask")  # in the test extra; installed by .ci/run
pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (.ci/run installs it)")

FLASK_APP = '''
from flask import Flask, abort, jsonify, request

app = Flask(__name__)


@app.get("/hello/<name>")
def hello(name):
    return f"Hello, {name}!\\n"


@app.post("/echo")
def echo():
    data = request.get_json()
    return jsonify(got=data, length=request.content_length, agent=request.headers.get("User-Agent", ""))


@app.get("/teapot")
def teapot():
    abort(418)
'''


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, timeout=20)


def test_a_flask_application(tmp_path: Path, twistd) -> None:
    (tmp_path / "flaskapp.py").write_text(FLASK_APP)
    port = free_port()
    server = twistd("-n", "-o", "web", "--wsgi", "flaskapp.app", "--listen", f"tcp:{port}:interface=127.0.0.1")
    wait_for_port(port, server.proc)
    base = f"http://127.0.0.1:{port}"
    assert curl(f"{base}/hello/tapster").stdout == b"Hello, tapster!\n"
    got = curl("-H", "Content-Type: application/json", "--data", '{"a": [1, 2]}', f"{base}/echo")
    assert json.loads(got.stdout) == {"got": {"a": [1, 2]}, "length": 13, "agent": got_agent(got)}, got
    status = curl("-o", "/dev/null", "-w", "%{http_code}", f"{base}/teapot").stdout
    assert status == b"418"
    missing = curl("-o", "/dev/null", "-w", "%{http_code}", f"{base}/nothing").stdout
    assert missing == b"404"
    # Two requests on one connection, through Flask: keep-alive works with a real framework too.
    both = curl("-v", f"{base}/hello/a", f"{base}/hello/b")
    assert both.stdout == b"Hello, a!\nHello, b!\n" and b"Re-using existing connection" in both.stderr
    assert server.stop() == 0, server.stderr


def got_agent(result: subprocess.CompletedProcess[bytes]) -> str:
    """curl's own User-Agent (curl/VERSION), whatever version Debian ships."""
    version = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1]
    return f"curl/{version}"
