"""tapconvert in-process: between formats, encrypting, decrypting, and refusing what would lose data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tapster.core import persist
from tapster.core._persist import crypto as _crypto
from tapster.core.plugin import build_application as build
from tapster.core.service import Service
from tapster.mktap.tapconvert import main

PORT = "tcp:0:interface=127.0.0.1"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_crypto, "SCRYPT_N", 2**10)
    Path("pw").write_text("right\n")
    Path("bad").write_text("wrong\n")
    persist.save(build("qotd", ["-p", PORT, "-s", "TopSecretQuote"], appname="site", uid=7), "site.tap")


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def tree(path: str, passphrase: str | None = None) -> tuple:
    app = persist.load(path, passphrase=passphrase)
    return app.name, app.uid, [(s.name, type(s).__name__, s.tapsterRecipe) for s in app], app.persistStyle


def test_pickle_to_yaml_and_back_keeps_the_tree(capsys) -> None:
    assert main(["-i", "site.tap", "-o", "site.yaml"]) == 0
    assert "wrote site.yaml (yaml) from site.tap (pickle)" in capsys.readouterr().err
    assert main(["-i", "site.yaml", "-o", "again.tap"]) == 0
    assert tree("again.tap")[:3] == tree("site.tap")[:3] == tree("site.yaml")[:3]
    assert tree("site.yaml")[3] == "yaml" and tree("again.tap")[3] == "pickle"


def test_type_option_wins_over_the_extension() -> None:
    assert main(["-i", "site.tap", "-o", "out.txt", "-t", "yaml"]) == 0
    assert persist.load("out.txt").persistStyle == "yaml"


def test_unknown_extension_keeps_the_input_format() -> None:
    assert main(["-i", "site.tap", "-o", "copy.bin"]) == 0
    assert persist.load("copy.bin").persistStyle == "pickle"


def test_encrypt_then_decrypt(capsys) -> None:
    assert main(["-i", "site.tap", "-o", "site.eyaml", "-e", "--passphrase-file", "pw"]) == 0
    data = Path("site.eyaml").read_bytes()
    assert data.startswith(b"TAPSTER-ENCRYPTED v1 format=yaml") and b"TopSecretQuote" not in data
    assert main(["-i", "site.eyaml", "-o", "clear.tap", "-d", "--passphrase-file", "pw"]) == 0
    assert not persist.is_encrypted("clear.tap")
    assert tree("clear.tap")[:3] == tree("site.tap")[:3]


def test_without_flags_the_output_keeps_the_input_encryption() -> None:
    assert main(["-i", "site.tap", "-o", "site.etap", "-e", "--passphrase-file", "pw"]) == 0
    assert main(["-i", "site.etap", "-o", "site.eyaml", "--passphrase-file", "pw"]) == 0
    assert persist.is_encrypted("site.eyaml")
    assert tree("site.eyaml", "right")[3] == "yaml"


def test_encrypting_asks_for_a_new_passphrase_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    answers = iter(["new one", "new one"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="", stream=None: next(answers))
    assert main(["-i", "site.tap", "-o", "site.etap", "-e"]) == 0
    assert tree("site.etap", "new one")[0] == "site"


def test_changing_the_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    assert main(["-i", "site.tap", "-o", "site.etap", "-e", "--passphrase-file", "pw"]) == 0
    answers = iter(["right", "fresh", "fresh"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="", stream=None: next(answers))
    assert main(["-i", "site.etap", "-o", "site.etap", "-e"]) == 0
    assert tree("site.etap", "fresh")[0] == "site"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-i", "site.etap", "-o", "leak.tap"], "add -d to write it decrypted, or name it .etap"),
        (["-i", "site.tap", "-o", "x.etap"], "add -e to encrypt it, or name it .tap"),
    ],
)
def test_names_that_contradict_the_encryption_are_refused(capsys, argv, message) -> None:
    assert main(["-i", "site.tap", "-o", "site.etap", "-e", "--passphrase-file", "pw"]) == 0
    capsys.readouterr()
    assert main(argv + ["--passphrase-file", "pw"]) == 2
    assert message in one_line(capsys.readouterr().err)
    assert not Path("leak.tap").exists() and not Path("x.etap").exists()


def test_wrong_passphrase_is_exit_1_and_writes_nothing(capsys) -> None:
    assert main(["-i", "site.tap", "-o", "site.etap", "-e", "--passphrase-file", "pw"]) == 0
    before = Path("site.etap").read_bytes()
    capsys.readouterr()
    assert main(["-i", "site.etap", "-o", "out.tap", "-d", "--passphrase-file", "bad"]) == 1
    assert "wrong passphrase for site.etap" in one_line(capsys.readouterr().err)
    assert Path("site.etap").read_bytes() == before and not Path("out.tap").exists()


def test_yaml_of_a_tree_without_recipes_is_refused_and_writes_nothing(capsys) -> None:
    app = persist.load("site.tap")
    extra = Service()
    extra.setName("manual")
    extra.setServiceParent(app)
    persist.save(app, "mixed.tap")
    assert main(["-i", "mixed.tap", "-o", "mixed.yaml"]) == 1
    assert "service 'manual'" in one_line(capsys.readouterr().err)
    assert not Path("mixed.yaml").exists()
    assert not [p for p in os.listdir(".") if p.endswith(".tmp")]


@pytest.mark.parametrize(
    "argv, status, message",
    [
        (["-o", "x.tap"], 2, "--in is required"),
        (["-i", "site.tap"], 2, "--out is required"),
        (["-i", "site.tap", "-o", "x", "-e", "-d"], 2, "exclude each other"),
        (["-i", "site.tap", "-o", "x", "-t", "json"], 2, "unknown format 'json'"),
        (["-i", "missing.tap", "-o", "x.tap"], 1, "no such file: missing.tap"),
        (["-i", "site.tap", "-o", "x.tap", "--bogus"], 2, "--bogus"),
    ],
)
def test_bad_input_is_one_line(capsys, argv, status, message) -> None:
    assert main(argv) == status
    assert message in one_line(capsys.readouterr().err)
    assert not Path("x.tap").exists() and not Path("x").exists()


def test_no_arguments_shows_help(capsys) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: tapconvert -i IN -o OUT") and "--passphrase-file" in out
