"""The flock-held pidfile."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tapster.twistd.pidfile import AlreadyRunning, NullPidFile, PidFile, read_pid


def test_writes_our_pid_and_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "t.pid"
    with PidFile(str(path)):
        assert read_pid(str(path)) == os.getpid()
    assert not path.exists()


def test_second_holder_is_refused_with_the_pid(tmp_path: Path) -> None:
    path = tmp_path / "t.pid"
    with PidFile(str(path)):
        with pytest.raises(AlreadyRunning, match=f"already running as pid {os.getpid()}"):
            PidFile(str(path)).acquire()
        assert read_pid(str(path)) == os.getpid()  # the refused one did not touch it


def test_stale_file_with_a_live_unrelated_pid_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "t.pid"
    path.write_text("1\n")  # pid 1 is alive, but holds no lock on this file
    with PidFile(str(path)):
        assert read_pid(str(path)) == os.getpid()


def test_garbage_file_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "t.pid"
    path.write_text("not a pid")
    with PidFile(str(path)):
        assert read_pid(str(path)) == os.getpid()


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot open pidfile"):
        PidFile(str(tmp_path / "missing-dir" / "t.pid")).acquire()


def test_null_pidfile_does_nothing(tmp_path: Path) -> None:
    with NullPidFile() as p:
        p.write()
    assert list(tmp_path.iterdir()) == []
