"""tapster.core.log: events, formatting and file observers with Twisted's names and semantics."""

from __future__ import annotations

import io
import json
import logging
import pickle
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tapster.core import log
from tapster.core.failure import Failure
from tapster.core.log import (
    FileLogObserver,
    ILogObserver,
    Logger,
    LogLevel,
    eventAsJSON,
    eventFromJSON,
    formatEvent,
    jsonFileLogObserver,
    textFileLogObserver,
)
from tapster.core.logfile import LogFile
from tapster.core.service import Application, IService

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}"


@pytest.fixture
def events() -> Iterator[list[dict]]:
    """Events reaching an observer added for the test (removed afterwards)."""
    seen: list[dict] = []
    log.addObserver(seen.append)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    yield seen
    log.removeObserver(seen.append)
    root.setLevel(level)


def test_format_event_fills_fields_attributes_items_and_calls() -> None:
    class Thing:
        name = "widget"

        def size(self) -> int:
            return 3

    event = {"log_format": "{thing.name} has {thing.size()} parts, {d[k]}, {{literal}}", "thing": Thing(),
             "d": {"k": "v"}}
    assert formatEvent(event) == "widget has 3 parts, v, {literal}"
    assert formatEvent({}) == ""


def test_an_unformattable_event_says_so_instead_of_raising() -> None:
    class Broken:
        def __format__(self, spec: str) -> str:
            raise RuntimeError("no")

    text = formatEvent({"log_format": "{missing} and {b}", "b": Broken()})
    assert text.startswith("Unable to format event '{missing} and {b}'") and "KeyError" in text


def test_log_levels_have_twisted_names_and_order() -> None:
    assert [lv.name for lv in LogLevel] == ["debug", "info", "warn", "error", "critical"]
    assert LogLevel.debug < LogLevel.info < LogLevel.warn < LogLevel.error < LogLevel.critical
    assert LogLevel.levelWithName("warn") is LogLevel.warn
    with pytest.raises(ValueError, match="no log level named 'loud'"):
        LogLevel.levelWithName("loud")


def test_logger_events_carry_format_fields_namespace_and_level(events: list[dict]) -> None:
    Logger("myplugin.server").info("listening on {port}", port=8007)
    (event,) = events
    assert event["log_format"] == "listening on {port}" and event["port"] == 8007
    assert event["log_namespace"] == "myplugin.server" and event["log_level"] is LogLevel.info
    assert formatEvent(event) == "listening on 8007" and event["message"] == ("listening on 8007",)
    assert isinstance(event["log_time"], float) and event["isError"] == 0


def test_logger_namespace_defaults_to_the_calling_module(events: list[dict]) -> None:
    Logger().warn("careful")
    assert events[0]["log_namespace"] == __name__ and events[0]["log_level"] is LogLevel.warn


def test_logger_as_class_attribute_logs_as_the_instance(events: list[dict]) -> None:
    class Proto:
        log = Logger()

        def logPrefix(self) -> str:
            return "Proto,3,127.0.0.1"

    p = Proto()
    p.log.error("oops {n}", n=1)
    # As in Twisted, a Logger sets no log_system (a text observer shows namespace#level), and the
    # namespace is what twistd's own line shows (the legacy "system").
    assert events[0]["log_source"] is p and events[0]["system"] == __name__
    assert "log_system" not in events[0] and events[0]["isError"] == 1
    out = io.StringIO()
    textFileLogObserver(out)(events[0])
    assert f"[{__name__}#error] oops 1" in out.getvalue()
    Logger("n").info("with {x}", x=1, system="chosen")
    assert events[1]["log_system"] == "chosen"


def test_failures_reach_observers_and_text_has_the_traceback(events: list[dict]) -> None:
    try:
        1 / 0
    except ZeroDivisionError:
        Logger("calc").failure("dividing {what}", what="by zero")
    (event,) = events
    assert isinstance(event["log_failure"], Failure) and event["log_failure"].check(ZeroDivisionError)
    assert event["log_level"] is LogLevel.critical
    out = io.StringIO()
    textFileLogObserver(out)(event)
    text = out.getvalue()
    assert "dividing by zero" in text and "\n\tTraceback (most recent call last):" in text
    assert "ZeroDivisionError" in text and text.endswith("\n")


def test_logger_with_its_own_observer_bypasses_logging(events: list[dict]) -> None:
    own: list[dict] = []
    Logger("x", observer=own.append).info("just {me}", me="mine")
    assert not events and formatEvent(own[0]) == "just mine" and own[0]["log_namespace"] == "x"


def test_legacy_msg_and_err_reach_observers(events: list[dict]) -> None:
    log.msg("hello", "world", system="qotd")
    try:
        raise KeyError("k")
    except KeyError:
        log.err(None, "while looking")
    first, second = events
    assert formatEvent(first) == "hello world" and first["system"] == first["log_system"] == "qotd"
    assert second["isError"] == 1 and second["log_failure"].check(KeyError) and formatEvent(second) == "while looking"


def test_text_observer_writes_classic_lines(tmp_path: Path) -> None:
    out = io.StringIO()
    observer = textFileLogObserver(out)
    observer({"log_format": "a\nb", "log_time": 0.0, "log_namespace": "ns", "log_level": LogLevel.info})
    observer({"log_format": "", "log_time": 0.0})  # no text: nothing written
    observer({"log_format": "sys", "log_time": None, "log_system": "qotd"})
    lines = out.getvalue()
    assert re.fullmatch(STAMP + r" \[ns#info\] a\n\tb\n- \[qotd\] sys\n", lines), lines
    custom = io.StringIO()
    textFileLogObserver(custom, timeFormat=None)({"log_format": "x", "log_time": 5.0, "log_system": "s"})
    assert custom.getvalue() == "- [s] x\n"


def test_file_observer_with_a_formatter_and_a_binary_file(tmp_path: Path) -> None:
    with open(tmp_path / "b.log", "wb") as f:
        FileLogObserver(f, lambda event: f"<{formatEvent(event)}>\n")({"log_format": "é"})
    assert (tmp_path / "b.log").read_text(encoding="utf-8") == "<é>\n"


def test_legacy_file_observer_emit_into_a_logfile(tmp_path: Path) -> None:
    """buildbot's .tac: ``application.setComponent(ILogObserver, FileLogObserver(logfile).emit)``."""
    logfile = LogFile.fromFullPath(str(tmp_path / "twistd.log"), rotateLength=10000000, maxRotatedFiles=10)
    observer = FileLogObserver(logfile)
    observer.timeFormat = "%Y"
    observer.emit({"message": ("legacy",), "log_format": "{log_text}", "log_text": "legacy", "time": 0.0,
                   "log_time": 0.0, "system": "-", "log_system": "worker"})
    logfile.close()
    assert re.fullmatch(r"\d{4} \[worker\] legacy\n", (tmp_path / "twistd.log").read_text())


def test_json_observer_round_trips(events: list[dict]) -> None:
    Logger("j").info("got {n} bytes from {peer}", n=12, peer=("127.0.0.1", 5))
    out = io.StringIO()
    jsonFileLogObserver(out)(events[0])
    text = out.getvalue()
    assert text.startswith("\x1e") and text.endswith("\n") and text.count("\n") == 1
    data = json.loads(text[1:])
    assert data["log_level"] == "info" and data["n"] == 12 and data["log_text"] == "got 12 bytes from ('127.0.0.1', 5)"
    back = eventFromJSON(text[1:])
    assert back["log_level"] is LogLevel.info and formatEvent(back) == "got 12 bytes from ['127.0.0.1', 5]"
    odd = json.loads(eventAsJSON({"log_format": "{o}", "o": object()}))
    assert odd["o"].startswith("<object object at")  # what JSON cannot hold becomes its repr, never an error
    with pytest.raises(ValueError):
        eventFromJSON("[1]")


def test_json_of_a_failure_holds_its_traceback() -> None:
    try:
        raise OSError("disk")
    except OSError as e:
        failure = Failure(e)
    data = json.loads(eventAsJSON({"log_format": "x", "log_failure": failure, "failure": failure}))
    assert data["log_failure"]["type"] == "builtins.OSError" and "disk" in data["log_failure"]["traceback"]
    assert "failure" not in data


def test_observer_errors_do_not_propagate(events: list[dict], capsys: pytest.CaptureFixture[str]) -> None:
    def broken(event: dict) -> None:
        raise RuntimeError("observer broke")

    log.addObserver(broken)
    try:
        Logger("safe").info("still fine")
    finally:
        log.removeObserver(broken)
    assert events and formatEvent(events[0]) == "still fine"


def test_start_logging_and_the_global_publisher_and_beginner() -> None:
    out = io.StringIO()
    observer = log.startLogging(out)
    seen: list[dict] = []
    log.globalLogBeginner.beginLoggingTo([seen.append])
    try:
        log.globalLogPublisher({"log_format": "published {x}", "x": 1, "log_namespace": "pub",
                                "log_level": LogLevel.warn})
    finally:
        log.removeObserver(observer)
        log.globalLogPublisher.removeObserver(seen.append)
    assert "published 1" in out.getvalue() and seen[0]["log_level"] is LogLevel.warn
    assert seen[0]["log_namespace"] == "pub"


def test_ilogobserver_is_a_transient_component_of_an_application(tmp_path: Path) -> None:
    app = Application("logs")
    logfile = LogFile("app.log", str(tmp_path))
    observer = textFileLogObserver(logfile)
    app.setComponent(ILogObserver, observer)
    assert app.getComponent(ILogObserver) is observer and ILogObserver(app) is observer
    assert ILogObserver.providedBy(observer) and ILogObserver.providedBy(print)
    assert not ILogObserver.providedBy(3)
    copy = pickle.loads(pickle.dumps(app))  # the open file is never saved
    assert copy.getComponent(ILogObserver) is None and IService(copy).name == "logs"
    logfile.close()


def test_add_component_does_not_register_every_callable_as_an_observer() -> None:
    app = Application("a")

    class CallableThing:
        def __call__(self, event: dict) -> None: ...

    app.addComponent(CallableThing())
    assert app.getComponent(ILogObserver) is None
