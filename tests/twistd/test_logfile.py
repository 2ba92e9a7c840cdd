"""The log file handler: size and daily rotation with a bounded number of files, reopening."""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path

import pytest

from tapster.twistd.logfile import LogFileHandler as LogFile


def record(text: str) -> logging.LogRecord:
    return logging.LogRecord("tapster.test", logging.INFO, __file__, 1, "%s", (text,), None)


@pytest.fixture
def handlers():
    made: list[LogFile] = []
    yield made
    for handler in made:
        handler.close()


def test_appends_one_line_per_record(tmp_path: Path, handlers) -> None:
    path = tmp_path / "t.log"
    path.write_text("old line\n")
    handler = LogFile(str(path))
    handlers.append(handler)
    handler.emit(record("first"))
    handler.emit(record("é second"))
    assert path.read_text(encoding="utf-8") == "old line\nfirst\né second\n"


def test_size_rotation_keeps_the_configured_number_of_files(tmp_path: Path, handlers) -> None:
    path = tmp_path / "t.log"
    handler = LogFile(str(path), max_size=1024, keep=3)
    handlers.append(handler)
    for i in range(200):
        handler.emit(record(f"line {i:04d} " + "x" * 90))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["t.log", "t.log.1", "t.log.2", "t.log.3"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 1024
    # newest last: t.log holds the latest lines, t.log.1 the ones just before
    assert "line 0199" in path.read_text()
    last_of_1 = (tmp_path / "t.log.1").read_text().splitlines()[-1]
    first_of_current = path.read_text().splitlines()[0]
    assert int(last_of_1.split()[1]) + 1 == int(first_of_current.split()[1])
    assert handler.rotated() == [f"{path}.1", f"{path}.2", f"{path}.3"]


def test_a_line_longer_than_the_limit_still_gets_written(tmp_path: Path, handlers) -> None:
    handler = LogFile(str(tmp_path / "t.log"), max_size=1024, keep=1)
    handlers.append(handler)
    handler.emit(record("y" * 5000))
    handler.emit(record("z" * 5000))
    assert (tmp_path / "t.log").read_text() == "z" * 5000 + "\n"
    assert (tmp_path / "t.log.1").read_text() == "y" * 5000 + "\n"


def test_files_beyond_keep_from_an_earlier_run_are_removed(tmp_path: Path, handlers) -> None:
    for i in range(1, 7):
        (tmp_path / f"t.log.{i}").write_text(f"old {i}\n")
    handler = LogFile(str(tmp_path / "t.log"), max_size=1024, keep=2)
    handlers.append(handler)
    handler.emit(record("a" * 1000))
    handler.emit(record("b" * 1000))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.log", "t.log.1", "t.log.2"]
    assert (tmp_path / "t.log.2").read_text() == "old 1\n"


def test_daily_rotation_at_local_midnight(tmp_path: Path, handlers) -> None:
    now = [datetime.datetime(2024, 5, 1, 23, 59, 0).timestamp()]
    handler = LogFile(str(tmp_path / "t.log"), daily=True, keep=2, clock=lambda: now[0])
    handlers.append(handler)
    handler.emit(record("may 1"))
    now[0] += 30
    handler.emit(record("still may 1"))
    assert not (tmp_path / "t.log.1").exists()
    now[0] += 60  # 00:00:30 on May 2
    handler.emit(record("may 2"))
    assert (tmp_path / "t.log.1").read_text() == "may 1\nstill may 1\n"
    assert (tmp_path / "t.log").read_text() == "may 2\n"
    for day in (3, 4, 5):
        now[0] += 86400
        handler.emit(record(f"may {day}"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.log", "t.log.1", "t.log.2"]
    assert (tmp_path / "t.log.2").read_text() == "may 3\n"


def test_reopen_after_the_file_was_moved_starts_a_new_file(tmp_path: Path, handlers) -> None:
    path = tmp_path / "t.log"
    handler = LogFile(str(path))
    handlers.append(handler)
    handler.emit(record("before"))
    path.rename(tmp_path / "t.log.moved")
    handler.emit(record("still to the moved file"))
    handler.reopen()
    handler.emit(record("after"))
    assert (tmp_path / "t.log.moved").read_text() == "before\nstill to the moved file\n"
    assert path.read_text() == "after\n"


def test_failed_reopen_keeps_writing_to_the_old_file(tmp_path: Path, handlers) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    handler = LogFile(str(directory / "t.log"))
    handlers.append(handler)
    (directory / "t.log").rename(tmp_path / "moved.log")
    directory.rmdir()  # the path can no longer be opened
    handler.reopen()
    handler.emit(record("kept"))
    text = (tmp_path / "moved.log").read_text()
    assert "could not reopen" in text and text.endswith("kept\n")


def test_failed_rotation_turns_rotation_off_and_keeps_logging(tmp_path: Path, handlers, monkeypatch) -> None:
    handler = LogFile(str(tmp_path / "t.log"), max_size=1024, keep=2)
    handlers.append(handler)

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    handler.emit(record("a" * 1000))
    handler.emit(record("b" * 1000))
    handler.emit(record("c" * 1000))
    text = (tmp_path / "t.log").read_text()
    assert "could not rotate" in text and "Permission denied" in text and text.endswith("c" * 1000 + "\n")
    assert handler.max_size is None


def test_keep_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LogFile(str(tmp_path / "t.log"), keep=0)


def test_new_file_follows_the_umask(tmp_path: Path, handlers) -> None:
    old = os.umask(0o027)
    try:
        handlers.append(LogFile(str(tmp_path / "t.log")))
    finally:
        os.umask(old)
    assert (tmp_path / "t.log").stat().st_mode & 0o777 == 0o640
