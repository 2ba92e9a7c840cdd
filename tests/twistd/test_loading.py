"""Where the application comes from: .tac files, plugins built in memory, passphrases."""

from __future__ import annotations

from pathlib import Path

import pytest

from tapster.core.errors import TapsterError
from tapster.core.service import Application
from tapster.twistd.loading import PluginUsageError, build_plugin, load_tac, read_passphrase
from tapster.twistd.options import ServerOptions

GOOD_TAC = """
from tapster.core.service import Application, Service
application = Application("fromtac")
Service().setServiceParent(application)
assert __file__.endswith("good.tac")
"""


def test_tac_defining_application_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "good.tac").write_text(GOOD_TAC)
    app = load_tac(str(tmp_path / "good.tac"))
    assert isinstance(app, Application) and app.name == "fromtac" and len(list(app)) == 1


@pytest.mark.parametrize("source, needle", [
    ("x = 1\n", "defines no `application`"),
    ("application = 42\n", "`application` is a int, not an application"),
    ("import no_such_module_xyz\n", "failed while running: ModuleNotFoundError"),
    ("x = (\n", r"app.tac:1: syntax error"),
])
def test_tac_mistakes_are_one_clear_error(tmp_path: Path, source: str, needle: str) -> None:
    (tmp_path / "app.tac").write_text(source)
    with pytest.raises(TapsterError, match=needle):
        load_tac(str(tmp_path / "app.tac"))


def test_missing_tac_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(TapsterError, match=r"no such file: .*nope.tac"):
        load_tac(str(tmp_path / "nope.tac"))
    with pytest.raises(TapsterError, match="is a directory"):
        load_tac(str(tmp_path))


def test_plugin_is_built_in_memory_with_twistds_name_in_its_help(capsys) -> None:
    app = build_plugin("qotd", ["--port", "tcp:0:interface=127.0.0.1", "--static", "hi"])
    assert isinstance(app, Application) and app.name == "qotd"
    assert [s.name for s in app] == ["qotd"]
    with pytest.raises(SystemExit):
        build_plugin("qotd", ["--help"])
    assert capsys.readouterr().out.startswith("Usage: twistd [options] qotd")


def test_plugin_option_mistake_is_a_usage_error_naming_the_plugin() -> None:
    with pytest.raises(PluginUsageError, match=r"qotd: .*--prot.*\(see twistd qotd --help\)"):
        build_plugin("qotd", ["--prot", "1"])


def test_unknown_plugin_suggests_the_right_name() -> None:
    with pytest.raises(TapsterError, match="did you mean 'qotd'"):
        build_plugin("qtod", [])


def options(*argv: str) -> ServerOptions:
    config = ServerOptions()
    config.parseOptions(list(argv))
    return config


def test_passphrase_file_first_line_without_newline(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret pass\nignored\n")
    config = options("-n", "-f", "x.etap", "--passphrase-file", str(tmp_path / "pw"))
    assert read_passphrase(config, "x.etap") == b"s3cret pass"


def test_passphrase_file_missing_or_empty_is_a_clear_error(tmp_path: Path) -> None:
    config = options("-n", "-f", "x.etap", "--passphrase-file", str(tmp_path / "pw"))
    with pytest.raises(TapsterError, match="cannot read the passphrase file"):
        read_passphrase(config, "x.etap")
    (tmp_path / "pw").write_text("\n")
    with pytest.raises(TapsterError, match="is empty"):
        read_passphrase(config, "x.etap")


def test_encrypted_without_a_terminal_asks_for_a_passphrase_file(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "x.etap").write_bytes(b"whatever")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    config = options("-n", "-e", "-f", str(tmp_path / "x.etap"))
    with pytest.raises(TapsterError, match="--passphrase-file"):
        read_passphrase(config, str(tmp_path / "x.etap"))


def test_plain_file_needs_no_passphrase(tmp_path: Path) -> None:
    (tmp_path / "x.tap").write_bytes(b"\x80\x05whatever")
    assert read_passphrase(options("-n", "-f", str(tmp_path / "x.tap")), str(tmp_path / "x.tap")) is None
