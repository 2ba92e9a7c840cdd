"""mktap in-process: argument splitting, main() statuses and messages, plugin listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tapster.core import persist
from tapster.core.errors import PluginError
from tapster.core.plugin import PluginEntry, find_plugin, plugin_rows
from tapster.mktap.cli import main
from tapster.mktap.options import split_argv


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["qotd", "--port", "1"], ([], "qotd", ["--port", "1"])),
        (["-n", "app", "qotd", "-p", "1"], (["-n", "app"], "qotd", ["-p", "1"])),
        (["--appname=app", "-d", "echo"], (["--appname=app", "-d"], "echo", [])),
        (["-dn", "app", "echo"], (["-dn", "app"], "echo", [])),
        (["-napp", "echo"], (["-napp"], "echo", [])),
        (["-o", "out.tap", "--", "qotd", "-x"], (["-o", "out.tap"], "qotd", ["-x"])),
        (["-d"], (["-d"], None, [])),
    ],
)
def test_split_argv(argv, expected) -> None:
    assert split_argv(argv) == expected


def test_builds_and_saves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["-n", "quotes", "qotd", "-p", "tcp:8007:interface=127.0.0.1", "-s", "hi"]) == 0
    assert "quotes.tap" in capsys.readouterr().err
    app = persist.load(str(tmp_path / "quotes.tap"))
    assert app.name == "quotes" and app.persistStyle == "pickle"
    assert [s.name for s in app] == ["qotd"]


def test_output_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["-o", "sub.tap", "echo", "-p", "7007"]) == 0
    assert (tmp_path / "sub.tap").is_file() and not (tmp_path / "echo.tap").exists()


def test_new_file_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["echo", "-p", "7007"]) == 0
    assert (tmp_path / "echo.tap").stat().st_mode & 0o777 == 0o600


def test_help_lists_plugins_with_descriptions(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: mktap")
    assert "qotd" in out and "Quote of the Day" in out
    assert "echo" in out and "RFC 862" in out


def test_no_arguments_shows_help(capsys) -> None:
    assert main([]) == 0
    assert "Plugins:" in capsys.readouterr().out


def test_plugin_help_shows_plugin_usage(capsys) -> None:
    assert main(["qotd", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: mktap [options] qotd")
    assert "--fortune" in out and "--static" in out


def test_unknown_plugin_exit_2(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["ecoh"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'echo'" in err


def test_unknown_format_is_a_usage_error(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["-t", "json", "echo"]) == 2
    err = capsys.readouterr().err
    assert "unknown format 'json'" in err and "pickle" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_failing_make_service_is_one_line_without_debug(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tapster.plugins.echo

    def boom(config):
        raise RuntimeError("kaput")

    monkeypatch.setattr(tapster.plugins.echo, "makeService", boom)
    monkeypatch.chdir(tmp_path)
    assert main(["echo"]) == 1
    err = capsys.readouterr().err
    assert "kaput" in err and "Traceback" not in err and "--debug" in err
    assert main(["-d", "echo"]) == 1
    assert "Traceback" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_find_plugin_suggests_close_names() -> None:
    with pytest.raises(PluginError, match="did you mean 'qotd'"):
        find_plugin("qodt")
    with pytest.raises(PluginError, match=r"installed: echo, (.*, )?qotd"):
        find_plugin("zzzzzz")


def test_broken_plugin_is_listed_as_broken_and_others_still_listed() -> None:
    entries = {
        "broken": PluginEntry("broken", "no_such_module_xyz", "brokendist"),
        "nothing": PluginEntry("nothing", "json", "stdlib"),  # imports, but is no plugin
        "qotd": find_plugin("qotd"),
    }
    rows = dict(plugin_rows(entries))
    assert rows["broken"].startswith("BROKEN:") and "no_such_module_xyz" in rows["broken"]
    assert rows["nothing"].startswith("BROKEN:") and "Options" in rows["nothing"]
    assert "Quote of the Day" in rows["qotd"]


def test_duplicate_claim_is_flagged() -> None:
    entry = PluginEntry("qotd", "tapster.plugins.qotd", "tapster", "1", others=("otherdist",))
    (_name, text), = plugin_rows({"qotd": entry})
    assert "otherdist" in text and "WARNING" in text


def test_a_failure_after_the_build_does_not_blame_the_plugin(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin built its service; a file that cannot be finished is the file's problem, and one line."""
    from tapster.core import persist

    monkeypatch.chdir(tmp_path)

    def broken_save(*args: object, **kwargs: object) -> str:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(persist, "save", broken_save)
    assert main(["qotd", "--port", "tcp:0:interface=127.0.0.1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not finish" in err and "disk on fire" in err
    assert "could not build" not in err and "qotd:" not in err.split("could not finish")[0]
    assert list(tmp_path.iterdir()) == []


def test_tapconvert_has_the_same_boundary(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tapster.core import persist
    from tapster.mktap.tapconvert import main as tapconvert

    monkeypatch.chdir(tmp_path)
    assert main(["qotd", "--port", "tcp:0:interface=127.0.0.1"]) == 0
    capsys.readouterr()

    def broken_dumps(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(persist, "dumps", broken_dumps)
    assert tapconvert(["-i", "qotd.tap", "-o", "qotd.tax"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not convert qotd.tap: RuntimeError: renderer bug" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qotd.tap"]
