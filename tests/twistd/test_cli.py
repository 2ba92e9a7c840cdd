"""twistd's command line in-process: help, usage errors, exit statuses documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from tapster.twistd.cli import main
from tapster.twistd.options import ServerOptions


def test_help_documents_the_exit_statuses(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: twistd")
    assert "Exit status:\n  0  " in out and "\n  4  stopped" in out


def test_mktap_help_documents_its_exit_statuses(capsys) -> None:
    from tapster.mktap.cli import main as mktap_main

    assert mktap_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Exit status:\n  0    the application was saved" in out  # aligned with 130 below
    assert "\n  130  interrupted (Ctrl-C); nothing was written" in out


def test_daemon_defaults_and_foreground_defaults() -> None:
    daemon = ServerOptions()
    daemon.parseOptions(["-f", "x.tap"])
    assert (daemon["pidfile"], daemon["logfile"]) == ("twistd.pid", "twistd.log")
    fg = ServerOptions()
    fg.parseOptions(["-n", "-f", "x.tap"])
    assert (fg["pidfile"], fg["logfile"]) == ("", "-")
    empty = ServerOptions()
    empty.parseOptions(["--pidfile", "", "-f", "x.tap"])
    assert empty["pidfile"] == ""


@pytest.mark.parametrize("argv, needle", [
    ([], "-f FILE"),
    (["-n", "-f", "x.tap", "--shutdown-timeout", "-1"], "shutdown-timeout"),
    (["-n", "-f", "x.tap", "--bogus"], "--bogus"),
])
def test_usage_errors_exit_2_with_one_line(argv, needle, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_missing_file_in_the_foreground_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["-n", "-f", "nope.tap"]) == 1
    assert "nope.tap" in capsys.readouterr().err


def test_help_does_not_import_asyncio() -> None:
    """``twistd --help`` lists plugins without paying for asyncio (~70 ms here)."""
    import subprocess
    import sys

    code = ("import sys\nfrom tapster.twistd.cli import main\nstatus = main(['--help'])\n"
            "print('asyncio' in sys.modules, status, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stderr.strip() == "False 0"


def test_unknown_reactor_is_refused_before_anything_starts(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["-n", "-r", "tornado", "qotd", "-p", "tcp:0:interface=127.0.0.1"]) == 1
    err = capsys.readouterr().err
    assert "unknown reactor 'tornado'" in err and "asyncio" in err and "--help-reactors" in err
