"""Log destinations and formats: plain and JSON lines, syslog, --logger handlers and observers."""

from __future__ import annotations

import io
import json
import logging
import socket
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from tapster.core import log
from tapster.core.errors import TapsterError
from tapster.twistd import logsetup
from tapster.twistd.logfile import LogFileHandler as LogFile
from tapster.twistd.logsetup import JsonFormatter, LogSettings, ObserverHandler, reopen_logs, setup_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture
def module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A throwaway module ``tapster_test_logger`` for --logger to find."""
    mod = types.ModuleType("tapster_test_logger")
    monkeypatch.setitem(sys.modules, "tapster_test_logger", mod)
    return mod


def test_text_lines_have_timestamp_system_and_level() -> None:
    out = io.StringIO()
    setup_logging(stream=out, rich=False)
    log.msg("hello", system="qotd,127.0.0.1")
    logging.getLogger("tapster.twistd").warning("careful")
    first, second = out.getvalue().splitlines()
    assert first[:4].isdigit() and first[10] == "T" and first.endswith("[qotd,127.0.0.1] INFO: hello")
    assert second.endswith("[twistd] WARNING: careful")


def test_json_lines_are_one_object_each_with_the_system() -> None:
    out = io.StringIO()
    setup_logging(stream=out, settings=LogSettings(format="json"))
    log.msg("hello", system="echo")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("tapster.twistd").exception("it broke")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "hello" and first["system"] == "echo" and first["level"] == "info"
    assert first["time"][:4].isdigit() and first["time"][-6] in "+-"
    assert second["level"] == "error" and second["system"] == "twistd" and "ValueError: boom" in second["exception"]


def test_json_formatter_never_fails_on_odd_arguments() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (object(),), None)
    record.system = "x"
    assert json.loads(JsonFormatter().format(record))["message"].startswith("<object")


def test_logfile_setting_gives_a_reopenable_rotating_file(tmp_path: Path) -> None:
    handler = setup_logging(settings=LogSettings(logfile=str(tmp_path / "t.log"), max_size=2048, keep=2))
    assert isinstance(handler, LogFile) and handler.max_size == 2048 and handler.keep == 2
    log.msg("to the file")
    assert "to the file" in (tmp_path / "t.log").read_text()
    assert reopen_logs(handler) is True
    handler.close()  # with no log file open in the process, there is nothing to reopen
    import gc

    gc.collect()
    from tapster.core import logfile

    still_open = [f for f in logfile._open_files if not f.closed]
    assert reopen_logs(logging.StreamHandler(io.StringIO())) is bool(still_open)


def test_unopenable_log_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TapsterError, match=r"cannot open log file .*missing.*--logfile"):
        setup_logging(logfile=str(tmp_path / "missing" / "t.log"))


def test_syslog_lines_carry_the_prefix_and_pid(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    address = str(short_tmp / "log")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.settimeout(5)
    real = logsetup._syslog_handler
    monkeypatch.setattr(logsetup, "_syslog_handler", lambda prefix: real(prefix, address))
    try:
        setup_logging(settings=LogSettings(syslog=True, prefix="myqotd"))
        log.msg("hello syslog", system="qotd")
        data = server.recv(4096).decode()
    finally:
        server.close()
    assert data.startswith("<30>")  # facility daemon (3) * 8 + info (6)
    import os

    assert f"myqotd[{os.getpid()}]: [qotd] INFO: hello syslog" in data


def test_unreachable_syslog_is_a_clear_error(short_tmp: Path) -> None:
    with pytest.raises(TapsterError, match=r"cannot reach syslog at .*--logfile"):
        logsetup._syslog_handler("twistd", str(short_tmp / "nothing-here"))


def test_logger_may_name_a_handler_class(module: types.ModuleType) -> None:
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    module.Collect = Collect
    handler = setup_logging(settings=LogSettings(logger="tapster_test_logger.Collect"))
    assert isinstance(handler, Collect)
    log.msg("via a handler", system="qotd")
    assert seen and seen[0].endswith("[qotd] INFO: via a handler")


def test_logger_may_name_a_factory_of_a_twisted_style_observer(module: types.ModuleType) -> None:
    events: list[dict] = []
    module.make = lambda: events.append
    handler = setup_logging(settings=LogSettings(logger="tapster_test_logger.make"))
    assert isinstance(handler, ObserverHandler)
    log.msg("an event", system="echo")
    try:
        1 / 0
    except ZeroDivisionError:
        log.err(None, "divided")
    first, second = events
    assert first["message"] == ("an event",) and first["system"] == "echo" and first["isError"] == 0
    assert first["log_level"] is log.LogLevel.info and first["log_level"].name == "info"
    assert isinstance(first["time"], float)
    assert second["isError"] == 1 and second["log_failure"].check(ZeroDivisionError)


def test_logger_may_name_a_handler_instance(module: types.ModuleType) -> None:
    out = io.StringIO()
    module.HANDLER = logging.StreamHandler(out)
    setup_logging(settings=LogSettings(logger="tapster_test_logger.HANDLER", format="json"))
    log.msg("x")
    assert json.loads(out.getvalue())["message"] == "x"


@pytest.mark.parametrize("name, needle", [
    ("tapster_test_logger.missing", "has no missing"),
    ("no_such_module_xyz.make", "no module 'no_such_module_xyz'"),
    ("tapster_test_logger.NUMBER", "neither a logging.Handler nor a factory"),
    ("tapster_test_logger.broken", "failed: RuntimeError: nope"),
    ("tapster_test_logger.gives_int", "returned a int"),
    ("tapster_test_logger..x", "not a dotted name"),
])
def test_logger_mistakes_are_clear_errors(module: types.ModuleType, name: str, needle: str) -> None:
    module.NUMBER = 3

    def broken() -> None:
        raise RuntimeError("nope")

    module.broken = broken
    module.gives_int = lambda: 3
    with pytest.raises(TapsterError, match=needle):
        setup_logging(settings=LogSettings(logger=name))


def test_a_module_failing_to_import_is_reported_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tapster_bad_logger.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TapsterError, match="importing tapster_bad_logger failed"):
        setup_logging(settings=LogSettings(logger="tapster_bad_logger.make"))


def test_broken_observer_does_not_raise(module: types.ModuleType, capsys) -> None:
    def observer(event: dict) -> None:
        raise RuntimeError("observer bug")

    module.make = lambda: observer
    setup_logging(settings=LogSettings(logger="tapster_test_logger.make"))
    log.msg("still fine")  # handleError prints to stderr, never raises
    assert "observer bug" in capsys.readouterr().err
