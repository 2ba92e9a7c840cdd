"""An application built with -u/-g binds its (privileged) port as root, then runs as that user."""

from __future__ import annotations

import grp
import os
import pwd
import socket
from pathlib import Path

import pytest

from tests.e2e._e2e import assert_one_clean_line, nc, run, wait_for_port

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root (CI runs as root)")


def _free_privileged_port() -> int:
    for port in range(1023, 900, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port below 1024")


def _ids(pid: int) -> tuple[list[int], list[int]]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    uid = next(line for line in status if line.startswith("Uid:")).split()[1:]
    gid = next(line for line in status if line.startswith("Gid:")).split()[1:]
    return [int(x) for x in uid], [int(x) for x in gid]


@root_only
def test_binds_below_1024_then_runs_as_nobody(tmp_path: Path, twistd) -> None:
    nogroup = "nogroup" if _has_group("nogroup") else "nobody"
    port = _free_privileged_port()
    made = run("mktap", "-u", "nobody", "-g", nogroup, "qotd", "-p", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    server = twistd("-n", "-o", "-f", "qotd.tap")
    wait_for_port(port, server.proc)
    assert nc(port) == b"An apple a day keeps the doctor away.\r\n"
    uids, gids = _ids(server.proc.pid)
    assert set(uids) == {pwd.getpwnam("nobody").pw_uid}  # real, effective, saved, filesystem
    assert set(gids) == {grp.getgrnam(nogroup).gr_gid}
    assert server.stop() == 0


@root_only
def test_unknown_user_fails_the_start_with_one_line(tmp_path: Path) -> None:
    port = _free_privileged_port()
    run("mktap", "-u", "no-such-user-xyz", "qotd", "-p", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    r = run("twistd", "-n", "-o", "-f", "qotd.tap", cwd=tmp_path)
    assert_one_clean_line(r)
    assert "no-such-user-xyz" in r.stderr


def _has_group(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False
