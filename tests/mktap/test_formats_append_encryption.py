"""mktap in-process: --type and its shorthands, --append, encryption, progress and debug output."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from tapster.core import persist
from tapster.core._persist import crypto as _crypto
from tapster.core.plugin import PluginEntry
from tapster.mktap.cli import main
from tapster.mktap.options import MkTapOptions, split_argv

PORT = "tcp:0:interface=127.0.0.1"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_crypto, "SCRYPT_N", 2**10)  # quick KDF: these tests are about mktap


@pytest.fixture
def prompts(monkeypatch: pytest.MonkeyPatch) -> _Answers:
    """Answers for getpass, in order; asking more than given fails the test."""
    import getpass

    answers = _Answers()
    asked = answers.asked

    def fake(prompt: str = "Password: ", stream=None) -> str:
        asked.append(prompt)
        if not answers:
            pytest.fail(f"unexpected prompt {prompt!r}")
        answer = answers.pop(0)
        if answer is EOFError:
            raise EOFError
        return answer

    monkeypatch.setattr(getpass, "getpass", fake)
    return answers


class _Answers(list):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def services(path: str, passphrase: str | None = None) -> list[str]:
    return [s.name for s in persist.load(path, passphrase=passphrase)]


# -- options ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["-a", "x.tap", "echo"], (["-a", "x.tap"], "echo", [])),
        (["--append", "x.tap", "echo", "-p", "1"], (["--append", "x.tap"], "echo", ["-p", "1"])),
        (["--passphrase-file", "pw", "-e", "qotd"], (["--passphrase-file", "pw", "-e"], "qotd", [])),
        (["--out", "o.tap", "echo"], (["--out", "o.tap"], "echo", [])),  # abbreviation of --output
        (["--pass", "pw", "echo"], (["--pass", "pw"], "echo", [])),
        (["-xp", "echo"], (["-xp"], "echo", [])),
        (["-et", "yaml", "echo"], (["-et", "yaml"], "echo", [])),
    ],
)
def test_split_argv_knows_the_new_options(argv, expected) -> None:
    assert split_argv(argv) == expected


def test_type_shorthands(monkeypatch: pytest.MonkeyPatch) -> None:
    import tapster.core.plugin

    fake = dict(tapster.core.plugin.format_specs())
    fake.setdefault("xml", fake["pickle"])
    fake.setdefault("source", fake["pickle"])
    monkeypatch.setattr(tapster.core.plugin, "format_specs", lambda: fake)
    for argv, kind in ((["-x"], "xml"), (["--source"], "source"), (["-t", "yaml"], "yaml"), ([], None),
                       (["-x", "-t", "xml"], "xml")):
        opts = MkTapOptions()
        opts.parseOptions(argv)
        assert opts["type"] == kind


def test_conflicting_formats_are_a_usage_error(capsys) -> None:
    assert main(["-t", "yaml", "-s", "echo"]) == 2
    assert "choose one format" in one_line(capsys.readouterr().err)


def test_yaml_type_writes_a_recipe(tmp_path: Path, capsys) -> None:
    assert main(["-t", "yaml", "-n", "site", "qotd", "-p", PORT, "-s", "Hi"]) == 0
    assert "wrote site.yaml (yaml)" in capsys.readouterr().err
    text = (tmp_path / "site.yaml").read_text()
    assert "plugin: qotd" in text and "static: Hi" in text


def test_format_follows_the_output_extension(tmp_path: Path) -> None:
    assert main(["-o", "app.yaml", "echo", "-p", PORT]) == 0
    assert persist.load("app.yaml").persistStyle == "yaml"


# -- append ----------------------------------------------------------------------


@pytest.mark.parametrize("kind, ext", [("pickle", "tap"), ("yaml", "yaml")])
def test_append_adds_services_in_the_files_own_format(kind: str, ext: str, capsys) -> None:
    assert main(["-t", kind, "-n", "site", "qotd", "-p", PORT]) == 0
    assert main(["--append", f"site.{ext}", "echo", "-p", PORT]) == 0
    assert main(["-a", f"site.{ext}", "echo", "-p", PORT]) == 0
    assert "added echo-2 to site." in capsys.readouterr().err
    app = persist.load(f"site.{ext}")
    assert [s.name for s in app] == ["qotd", "echo", "echo-2"]
    assert app.persistStyle == kind and app.name == "site"
    assert sorted(os.listdir(".")) == [f"site.{ext}"]


def test_append_to_a_new_file_starts_an_application_named_after_it() -> None:
    assert main(["-a", "site.yaml", "qotd", "-p", PORT]) == 0
    assert main(["-a", "site.yaml", "qotd", "-p", PORT]) == 0
    app = persist.load("site.yaml")
    assert (app.name, [s.name for s in app], app.persistStyle) == ("site", ["qotd", "qotd-2"], "yaml")


def test_append_may_rename_and_set_ids() -> None:
    assert main(["-n", "a", "echo", "-p", PORT]) == 0
    assert main(["-a", "a.tap", "-n", "b", "-u", "1000", "-g", "staff", "qotd", "-p", PORT]) == 0
    app = persist.load("a.tap")
    assert (app.name, app.processName, app.uid, app.gid) == ("b", "b", 1000, "staff")


def test_append_refuses_to_change_the_format(capsys) -> None:
    assert main(["echo", "-p", PORT]) == 0
    before = Path("echo.tap").read_bytes()
    capsys.readouterr()
    assert main(["-a", "echo.tap", "-t", "yaml", "qotd"]) == 2
    assert "tapconvert" in one_line(capsys.readouterr().err)
    assert Path("echo.tap").read_bytes() == before


def test_append_refuses_to_encrypt_a_clear_file(capsys) -> None:
    Path("pw").write_text("pw\n")
    assert main(["echo", "-p", PORT]) == 0
    capsys.readouterr()
    assert main(["-a", "echo.tap", "--passphrase-file", "pw", "qotd"]) == 2
    assert "not encrypted" in one_line(capsys.readouterr().err)


def test_append_to_a_corrupt_file_is_one_line_and_keeps_it(capsys) -> None:
    Path("bad.tap").write_bytes(b"\x80\x05garbage")
    assert main(["-a", "bad.tap", "echo"]) == 1
    assert "bad.tap" in one_line(capsys.readouterr().err)
    assert Path("bad.tap").read_bytes() == b"\x80\x05garbage"


def test_bad_plugin_option_on_append_leaves_the_file(capsys) -> None:
    assert main(["echo", "-p", PORT]) == 0
    before = Path("echo.tap").read_bytes()
    capsys.readouterr()
    assert main(["-a", "echo.tap", "qotd", "--prot", "1"]) == 2
    assert "--prot" in one_line(capsys.readouterr().err)
    assert Path("echo.tap").read_bytes() == before


# -- encryption ------------------------------------------------------------------


def test_encrypted_asks_twice_and_writes_ciphertext(prompts, capsys) -> None:
    prompts.extend(["s3cret", "s3cret"])
    assert main(["-e", "qotd", "-p", PORT, "-s", "TopSecretQuote"]) == 0
    assert prompts.asked == ["New passphrase for qotd.etap: ", "Repeat the passphrase: "]
    assert "wrote qotd.etap (pickle, encrypted)" in capsys.readouterr().err
    data = Path("qotd.etap").read_bytes()
    assert data.startswith(b"TAPSTER-ENCRYPTED v1 format=pickle") and b"TopSecretQuote" not in data
    assert services("qotd.etap", "s3cret") == ["qotd"]


@pytest.mark.parametrize(
    "answers, message",
    [
        (["one", "two"], "the two passphrases differ"),
        (["", ""], "the passphrase is empty"),
        ([EOFError], "--passphrase-file"),
    ],
)
def test_bad_new_passphrase_writes_nothing(prompts, capsys, answers, message) -> None:
    prompts.extend(answers)
    assert main(["-e", "echo", "-p", PORT]) == 1
    assert message in one_line(capsys.readouterr().err)
    assert os.listdir(".") == []


def test_passphrase_file_implies_encryption_and_append_keeps_it(capsys) -> None:
    Path("pw").write_text("from a file\n")
    assert main(["--passphrase-file", "pw", "-t", "yaml", "-n", "site", "qotd", "-p", PORT]) == 0
    assert main(["-a", "site.eyaml", "--passphrase-file", "pw", "echo", "-p", PORT]) == 0
    assert persist.is_encrypted("site.eyaml")
    assert services("site.eyaml", "from a file") == ["qotd", "echo"]
    assert persist.load("site.eyaml", passphrase="from a file").persistStyle == "yaml"


def test_append_to_encrypted_file_asks_once(prompts) -> None:
    prompts.extend(["pw", "pw", "pw"])
    assert main(["-e", "echo", "-p", PORT]) == 0
    assert main(["-a", "echo.etap", "qotd", "-p", PORT]) == 0
    assert prompts.asked[-1] == "Passphrase for echo.etap: " and not prompts
    assert services("echo.etap", "pw") == ["echo", "qotd"]


def test_wrong_passphrase_on_append_is_exit_1_and_file_untouched(capsys) -> None:
    Path("pw").write_text("right\n")
    Path("bad").write_text("wrong\n")
    assert main(["--passphrase-file", "pw", "echo", "-p", PORT]) == 0
    before, mtime = Path("echo.etap").read_bytes(), Path("echo.etap").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["-a", "echo.etap", "--passphrase-file", "bad", "qotd"]) == 1
    assert "wrong passphrase for echo.etap" in one_line(capsys.readouterr().err)
    assert Path("echo.etap").read_bytes() == before and Path("echo.etap").stat().st_mtime_ns == mtime
    assert sorted(os.listdir(".")) == ["bad", "echo.etap", "pw"]


@pytest.mark.parametrize("content, message", [(None, "cannot read the passphrase file"), ("\n", "is empty")])
def test_unusable_passphrase_file(capsys, content, message) -> None:
    if content is not None:
        Path("pw").write_text(content)
    assert main(["--passphrase-file", "pw", "echo"]) == 1
    assert message in one_line(capsys.readouterr().err)
    assert [p for p in os.listdir(".") if p != "pw"] == []


def test_interrupted_prompt_writes_nothing(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import getpass

    def interrupt(prompt: str = "", stream=None) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(getpass, "getpass", interrupt)
    assert main(["-e", "echo"]) == 130
    assert "interrupted; nothing was written" in capsys.readouterr().err
    assert os.listdir(".") == []


# -- a save failing half-way leaves nothing behind -------------------------------


def test_save_failing_after_writing_part_keeps_the_old_file(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert main(["echo", "-p", PORT]) == 0
    before = Path("echo.tap").read_bytes()

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    capsys.readouterr()
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", failing_fsync)  # data written to the temp file, then the disk fails
        assert main(["-a", "echo.tap", "qotd", "-p", PORT]) == 1
    assert "cannot write echo.tap: Input/output error" in one_line(capsys.readouterr().err)
    assert Path("echo.tap").read_bytes() == before
    assert os.listdir(".") == ["echo.tap"]  # no temporary file left


def test_interrupt_during_rename_keeps_the_old_file(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert main(["echo", "-p", PORT]) == 0
    before = Path("echo.tap").read_bytes()

    def interrupted(src, dst):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", interrupted)
        assert main(["-a", "echo.tap", "qotd", "-p", PORT]) == 130
    assert Path("echo.tap").read_bytes() == before and os.listdir(".") == ["echo.tap"]


def test_serializer_failing_half_way_writes_nothing(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from tapster.core import persist as persist_module
    from tapster.core.errors import PersistError

    real = persist_module.format_for

    class Exploding:
        def __init__(self, spec):
            self._spec = spec

        def __getattr__(self, name):
            return getattr(self._spec, name)

        def dump(self, app):
            self._spec.dump(app)  # some data produced...
            raise PersistError("cannot save the application as pickle: boom half-way")

    monkeypatch.setattr(persist_module, "format_for", lambda kind=None, filename=None: Exploding(real(kind, filename)))
    assert main(["echo", "-p", PORT]) == 1
    assert "boom half-way" in one_line(capsys.readouterr().err)
    assert os.listdir(".") == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory_is_one_line(tmp_path: Path, capsys) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["-o", str(locked / "x.tap"), "echo"]) == 1
        assert "cannot write" in one_line(capsys.readouterr().err)
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o700)


# -- progress, debug, duplicates -------------------------------------------------


def test_progress_into_a_pipe_is_plain_lines(capsys) -> None:
    assert main(["-p", "echo", "-p", PORT]) == 0
    err = capsys.readouterr().err
    for step in ("finding plugin echo", "importing plugin echo", "parsing the plugin's options",
                 "building the echo service", "saving echo.tap"):
        assert f"mktap: {step} ... done (" in err
    assert "\x1b[" not in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_uses_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["-p", "echo", "-p", PORT]) == 0
    out = terminal.getvalue()
    assert "\x1b[" in out  # drawn by rich, then cleared (transient)
    assert "wrote echo.tap" in out


def test_debug_shows_plugin_loading_details(capsys) -> None:
    assert main(["-d", "echo", "-p", PORT]) == 0
    err = capsys.readouterr().err
    assert "debug: plugin echo: entry point 'tapster.plugins.echo' of tapster" in err
    assert "imported from" in err and "echo.py" in err
    assert "debug: importing plugin echo:" in err and " ms" in err


def test_plugin_claimed_by_two_distributions_is_a_warning_naming_both(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import tapster.core.plugin

    entry = PluginEntry("echo", "tapster.plugins.echo", "tapster", "1", others=("evil-echo",))
    monkeypatch.setattr(tapster.core.plugin, "find_plugin", lambda name: entry)
    assert main(["echo", "-p", PORT]) == 0
    err = capsys.readouterr().err
    assert "warning: plugin 'echo' is provided by tapster and also by evil-echo; using tapster" in err
