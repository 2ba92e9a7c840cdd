"""twistd's pidfile and log file refuse symlinks, non-files and planted files, as OpenSSH's StrictModes does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tapster.core.errors import TapsterError
from tapster.twistd.logfile import LogFileHandler as LogFile
from tapster.twistd.pidfile import PidFile
from tests.e2e._e2e import assert_one_clean_line, run


def victim(tmp_path: Path) -> Path:
    target = tmp_path / "precious"
    target.write_text("do not touch\n")
    return target


def test_a_pidfile_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    target = victim(tmp_path)
    (tmp_path / "app.pid").symlink_to(target)
    with pytest.raises(TapsterError, match=r"pidfile .* is a symbolic link"):
        PidFile(str(tmp_path / "app.pid")).acquire()
    assert target.read_text() == "do not touch\n"


def test_a_log_file_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    target = victim(tmp_path)
    (tmp_path / "app.log").symlink_to(target)
    with pytest.raises(TapsterError, match=r"log file .* is a symbolic link"):
        LogFile(str(tmp_path / "app.log"))
    assert target.read_text() == "do not touch\n"


def test_a_log_reopened_after_a_symlink_was_planted_keeps_the_old_file(tmp_path: Path) -> None:
    target = victim(tmp_path)
    log = LogFile(str(tmp_path / "app.log"))
    os.replace(tmp_path / "app.log", tmp_path / "app.log.1")  # logrotate moved it...
    (tmp_path / "app.log").symlink_to(target)  # ...and someone planted a link in its place
    log.reopen()
    assert target.read_text() == "do not touch\n"
    assert "could not reopen" in (tmp_path / "app.log.1").read_text()
    log.close()


def test_a_fifo_pidfile_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "app.pid")
    with pytest.raises(TapsterError, match="is not a regular file"):
        PidFile(str(tmp_path / "app.pid")).acquire()


@pytest.mark.skipif(os.geteuid() != 0, reason="planting a file owned by another user needs root")
def test_a_file_planted_by_another_user_in_a_shared_directory_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    planted = shared / "app.pid"
    planted.write_text("")
    os.chown(planted, 65534, 65534)
    with pytest.raises(TapsterError, match=r"belongs to another user \(uid 65534\) .* which others can write to"):
        PidFile(str(planted)).acquire()
    private = tmp_path / "private"
    private.mkdir(mode=0o755)
    theirs = private / "app.pid"
    theirs.write_text("")
    os.chown(theirs, 65534, 65534)  # not ours, but nobody else could have put it there
    pidfile = PidFile(str(theirs))
    pidfile.acquire()
    pidfile.release()


def test_twistd_says_so_in_one_line(tmp_path: Path) -> None:
    target = victim(tmp_path)
    (tmp_path / "twistd.pid").symlink_to(target)
    assert run("mktap", "qotd", "--port", "tcp:0:interface=127.0.0.1", cwd=tmp_path).returncode == 0
    r = run("twistd", "-n", "--pidfile", "twistd.pid", "-f", "qotd.tap", cwd=tmp_path)
    assert_one_clean_line(r)
    assert "symbolic link" in r.stderr and target.read_text() == "do not touch\n"
