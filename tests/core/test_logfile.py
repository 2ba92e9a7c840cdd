"""tapster.core.logfile: Twisted's LogFile/DailyLogFile semantics, written from its documentation."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from tapster.core.errors import TapsterError
from tapster.core.logfile import DailyLogFile, LogFile


@pytest.fixture
def files():
    made: list = []
    yield made
    for f in made:
        f.close()


def test_appends_and_reports_its_path(tmp_path: Path, files) -> None:
    (tmp_path / "app.log").write_bytes(b"old\n")
    log = LogFile("app.log", str(tmp_path))
    files.append(log)
    assert log.path == str(tmp_path / "app.log") and log.name == "app.log" and log.directory == str(tmp_path)
    assert log.size == 4
    log.write("é text\n")
    log.write(b"bytes\n")
    log.flush()
    assert (tmp_path / "app.log").read_text(encoding="utf-8") == "old\né text\nbytes\n"
    assert log.size == 4 + len("é text\n".encode()) + 6


def test_from_full_path(tmp_path: Path, files) -> None:
    log = LogFile.fromFullPath(str(tmp_path / "x.log"), rotateLength=10, maxRotatedFiles=2)
    files.append(log)
    assert isinstance(log, LogFile) and log.rotateLength == 10 and log.maxRotatedFiles == 2
    assert log.path == str(tmp_path / "x.log")


def test_rotates_once_the_length_is_reached_newest_is_1_and_the_bound_holds(tmp_path: Path, files) -> None:
    log = LogFile("app.log", str(tmp_path), rotateLength=10, maxRotatedFiles=3)
    files.append(log)
    for i in range(8):
        log.write(f"line {i:04d}\n")  # 10 bytes: every write after the first rotates
    assert log.listLogs() == [1, 2, 3]
    assert (tmp_path / "app.log").read_text() == "line 0007\n"
    assert (tmp_path / "app.log.1").read_text() == "line 0006\n"
    assert (tmp_path / "app.log.3").read_text() == "line 0004\n"
    assert not (tmp_path / "app.log.4").exists()
    assert log.getLog(2).readLines() == ["line 0005\n"]
    with pytest.raises(ValueError):
        log.getLog(9)


def test_rotate_length_none_never_rotates_and_unbounded_keeps_all(tmp_path: Path, files) -> None:
    log = LogFile("app.log", str(tmp_path), rotateLength=None)
    files.append(log)
    for _ in range(50):
        log.write("x" * 100)
    assert log.listLogs() == [] and log.size == 5000
    unbounded = LogFile("b.log", str(tmp_path), rotateLength=1)
    files.append(unbounded)
    for i in range(12):
        unbounded.write(f"{i}\n")
    assert unbounded.listLogs() == list(range(1, 12))


def test_manual_rotate_and_non_numeric_suffixes_are_left_alone(tmp_path: Path, files) -> None:
    (tmp_path / "app.log.old").write_text("keep me\n")
    (tmp_path / "app.log.0").write_text("zero is no rotation number\n")
    log = LogFile("app.log", str(tmp_path))
    files.append(log)
    log.write("a\n")
    log.rotate()
    log.write("b\n")
    assert log.listLogs() == [1]
    assert (tmp_path / "app.log.old").read_text() == "keep me\n"
    assert (tmp_path / "app.log.1").read_text() == "a\n"


def test_default_mode_of_a_new_file_and_of_an_existing_one(tmp_path: Path, files) -> None:
    log = LogFile("m.log", str(tmp_path), defaultMode=0o600)
    files.append(log)
    assert (tmp_path / "m.log").stat().st_mode & 0o777 == 0o600
    (tmp_path / "e.log").write_text("")
    os.chmod(tmp_path / "e.log", 0o604)
    existing = LogFile("e.log", str(tmp_path), rotateLength=1)
    files.append(existing)
    assert existing.defaultMode == 0o604
    existing.write("one\n")
    existing.write("two\n")  # rotated: the new file gets the old one's mode
    assert (tmp_path / "e.log").stat().st_mode & 0o777 == 0o604


def test_reopen_after_a_move_and_close(tmp_path: Path, files) -> None:
    log = LogFile("app.log", str(tmp_path))
    files.append(log)
    log.write("before\n")
    (tmp_path / "app.log").rename(tmp_path / "moved")
    log.reopen()
    log.write("after\n")
    assert (tmp_path / "moved").read_text() == "before\n" and (tmp_path / "app.log").read_text() == "after\n"
    log.close()
    assert log.closed
    with pytest.raises(ValueError):
        log.write("closed\n")


def test_refuses_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "precious").write_text("do not touch\n")
    (tmp_path / "app.log").symlink_to(tmp_path / "precious")
    with pytest.raises(TapsterError, match="symbolic link"):
        LogFile("app.log", str(tmp_path))
    assert (tmp_path / "precious").read_text() == "do not touch\n"


def test_a_failed_rotation_keeps_writing_and_says_so_once(tmp_path: Path, files, monkeypatch) -> None:
    log = LogFile("app.log", str(tmp_path), rotateLength=5)
    files.append(log)
    log.write("first\n")

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    for _ in range(3):
        log.write("more\n")
    text = (tmp_path / "app.log").read_text()
    assert text.count("could not rotate") == 1 and text.endswith("more\nmore\nmore\n")
    assert log.rotationError == "Permission denied" and log.rotateLength is None


def test_pickles_without_its_file_and_reopens_when_loaded(tmp_path: Path, files) -> None:
    log = LogFile("app.log", str(tmp_path), rotateLength=100, maxRotatedFiles=4)
    files.append(log)
    log.write("saved\n")
    copy = pickle.loads(pickle.dumps(log))
    files.append(copy)
    assert copy.rotateLength == 100 and copy.maxRotatedFiles == 4 and copy.size == 6 and not copy.closed
    copy.write("loaded\n")
    assert (tmp_path / "app.log").read_text() == "saved\nloaded\n"


class _Day(DailyLogFile):
    """A DailyLogFile whose today is set by the test (Twisted documents toDate as the hook for this)."""

    today = (2026, 12, 1)

    def toDate(self, *args: float) -> tuple[int, int, int]:
        return self.today if not args else super().toDate(*args)


def test_daily_rotation_names_the_old_file_by_its_date(tmp_path: Path, files) -> None:
    log = _Day("d.log", str(tmp_path))
    files.append(log)
    log.lastDate = (2026, 12, 1)
    log.write("december first\n")
    _Day.today = (2026, 12, 2)
    try:
        assert log.shouldRotate()
        log.write("december second\n")
    finally:
        _Day.today = (2026, 12, 1)
    assert (tmp_path / "d.log.2026_12_1").read_text() == "december first\n"
    assert (tmp_path / "d.log").read_text() == "december second\n"
    assert log.suffix((2026, 1, 9)) == "2026_1_9"


def test_daily_rotation_never_overwrites_a_file_of_that_day(tmp_path: Path, files) -> None:
    (tmp_path / "d.log.2026_12_1").write_text("from another run\n")
    log = _Day("d.log", str(tmp_path))
    files.append(log)
    log.lastDate = (2026, 12, 1)
    _Day.today = (2026, 12, 2)
    try:
        log.write("x\n")
        log.write("y\n")
    finally:
        _Day.today = (2026, 12, 1)
    assert (tmp_path / "d.log.2026_12_1").read_text() == "from another run\n"
    assert (tmp_path / "d.log").read_text() == "x\ny\n"


def test_a_daily_file_pickles(tmp_path: Path, files) -> None:
    log = DailyLogFile("d.log", str(tmp_path))
    files.append(log)
    copy = pickle.loads(pickle.dumps(log))
    files.append(copy)
    assert copy.lastDate == log.lastDate and copy.path == log.path


def test_reopen_all_reopens_every_open_log_file(tmp_path: Path, files) -> None:
    from tapster.core.logfile import reopenAll

    a = LogFile("a.log", str(tmp_path))
    b = DailyLogFile("b.log", str(tmp_path))
    files.extend([a, b])
    closed = LogFile("c.log", str(tmp_path))
    closed.close()
    for log in (a, b):
        log.write("before\n")
        os.rename(log.path, log.path + ".moved")  # logrotate's move
    assert reopenAll() >= 2
    a.write("after\n")
    b.write("after\n")
    assert (tmp_path / "a.log").read_text() == "after\n" and (tmp_path / "b.log").read_text() == "after\n"
    assert (tmp_path / "a.log.moved").read_text() == "before\n"
    assert closed.closed  # a closed file stays closed
