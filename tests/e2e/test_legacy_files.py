"""Files saved before the ``tapster.*`` move (paths ``core.*``, ``plugins.*``) still load and run.

``tests/data/legacy`` holds one application (qotd on a UNIX socket, echo and a
telnet console on free TCP ports) written by commit c504e30 in every format,
clear and encrypted. Each is run with the real ``twistd``, talked to with
``nc``, and stopped with SIGTERM; the shutdown file it leaves must record
today's paths only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tapster.core import persist
from tapster.core._persist import crypto
from tests.e2e._e2e import DEADLINE, nc, wait_for

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy"
PASSPHRASE = (LEGACY / "passphrase.txt").read_bytes().strip()
QUOTE = b"Saved by c504e30.\r\n"
#: A class path of the old layout: ``core.x`` or ``plugins.x`` not preceded by ``tapster.``.
OLD_PATH = re.compile(rb"(?<![\w.])(core|plugins)\.[a-z_]")

FILES = ["legacy.tap", "legacy.tax", "legacy.tas", "legacy.yaml", "legacy.etap", "legacy.etax", "legacy.etas"]


def test_the_fixtures_really_hold_old_paths() -> None:
    """If these files were ever regenerated with a newer tapster, this test would say so."""
    for name in ("legacy.tap", "legacy.tax", "legacy.tas"):
        assert OLD_PATH.search((LEGACY / name).read_bytes()), name
    assert b"tapster.core" not in (LEGACY / "legacy.tap").read_bytes()
    assert b"from core._source_format import instance, setstate" in (LEGACY / "legacy.tas").read_bytes()


@pytest.mark.parametrize("name", FILES)
def test_an_old_file_loads_as_the_same_application(name: str) -> None:
    passphrase = PASSPHRASE if name.startswith("legacy.e") else None
    app = persist.load(str(LEGACY / name), passphrase=passphrase)
    assert type(app).__module__ == "tapster.core.service" and app.name == "legacy"
    assert [s.name for s in app] == ["qotd", "echo", "telnet"]
    qotd = app.getServiceNamed("qotd")
    assert type(qotd).__name__ == "UNIXServer" and qotd.args[0] == "qotd.sock"
    assert qotd.args[1].quoter.quote == "Saved by c504e30."
    telnet = app.getServiceNamed("telnet")
    assert type(telnet).__module__ == "tapster.plugins.console"  # the console's public home


def _inner_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if crypto.is_encrypted(data):
        return crypto.decrypt(data, PASSPHRASE, str(path))[1]
    return data


def _log_line(log: Path, pattern: str, proc: subprocess.Popen) -> re.Match[str]:
    found: list[re.Match[str]] = []

    def seen() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"twistd exited with {proc.returncode}: {proc.communicate()}")
        match = re.search(pattern, log.read_text()) if log.exists() else None
        if match:
            found.append(match)
        return bool(match)

    wait_for(seen, f"{pattern!r} in {log}")
    return found[0]


@pytest.mark.parametrize("name", FILES)
def test_an_old_file_runs_and_its_shutdown_save_records_todays_paths(name: str, tmp_path: Path,
                                                                     servers: list) -> None:
    for item in LEGACY.iterdir():
        shutil.copy(item, tmp_path / item.name)
    args = ["-n", "-l", "app.log", "--pidfile", "", "-f", name]
    if name.startswith("legacy.e"):
        args[:0] = ["--passphrase-file", "passphrase.txt"]
    from tests.e2e._e2e import Server

    server = Server(*args, cwd=tmp_path)
    servers.append(server)
    log = tmp_path / "app.log"
    echo_port = int(_log_line(log, r"EchoFactory listening on 127\.0\.0\.1:(\d+)", server.proc).group(1))
    _log_line(log, r"legacy started", server.proc)
    assert subprocess.run(["nc", "-U", "-d", "qotd.sock"], cwd=tmp_path, capture_output=True,
                          timeout=DEADLINE).stdout == QUOTE
    assert nc(echo_port, b"still echoing\n") == b"still echoing\n"
    assert server.stop() == 0, server.stderr
    ext = name.rpartition(".")[2]
    shutdown = tmp_path / f"legacy-shutdown.{ext}"
    end = time.monotonic() + DEADLINE
    while not shutdown.exists() and time.monotonic() < end:
        time.sleep(0.02)
    saved = _inner_bytes(shutdown)
    assert not OLD_PATH.search(saved), f"{shutdown.name} still records an old class path"
    if ext in ("tap", "etap", "tax", "etax", "tas", "etas"):
        assert b"tapster.core.service" in saved and b"tapster.plugins.qotd" in saved
    again = persist.load(str(shutdown), passphrase=PASSPHRASE if ext.startswith("e") else None)
    assert [s.name for s in again] == ["qotd", "echo", "telnet"]
