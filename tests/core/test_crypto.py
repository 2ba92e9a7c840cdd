"""Encrypted applications: tapster.core._persist.crypto and the passphrase paths of tapster.core.persist.

Most tests lower scrypt's cost (``fast_kdf``) so the file stays quick; the
tests of the header and of the defaults use the real parameters.
"""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from tapster.core import persist
from tapster.core._persist import crypto as _crypto
from tapster.core.errors import BadPassphrase, PersistError
from tapster.core.service import Application, Service


@pytest.fixture
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_crypto, "SCRYPT_N", 2**10)


def make_app(marker: str = "TopSecretQuote") -> Application:
    app = Application("demo", uid=1000, gid="staff")
    service = Service()
    service.setName("svc")
    service.marker = marker
    service.setServiceParent(app)
    return app


def test_header_names_format_and_default_scrypt_parameters() -> None:
    data = _crypto.encrypt(b"payload", "pw", "pickle")
    line = data.split(b"\n", 1)[0].decode()
    words = line.split()
    assert words[:4] == ["TAPSTER-ENCRYPTED", "v1", "format=pickle", "scrypt"]
    assert words[4:7] == ["n=65536", "r=8", "p=1"]
    assert words[7].startswith("salt=") and len(words[7]) > len("salt=") + 16
    assert _crypto.is_encrypted(data)
    assert _crypto.decrypt(data, "pw", "x") == ("pickle", b"payload")


def test_default_kdf_is_deliberately_slow() -> None:
    header = _crypto.Header("pickle", _crypto.SCRYPT_N, _crypto.SCRYPT_R, _crypto.SCRYPT_P, os.urandom(16))
    start = time.perf_counter()
    _crypto._fernet("pw", header)
    assert time.perf_counter() - start > 0.02  # a sanity floor only; bench numbers are in the report


def test_round_trip_and_random_salt(fast_kdf) -> None:
    a = _crypto.encrypt(b"same", "pw", "yaml")
    b = _crypto.encrypt(b"same", "pw", "yaml")
    assert a != b  # a fresh salt (and IV) for every file
    assert a.split(b"\n")[0] != b.split(b"\n")[0]
    assert _crypto.decrypt(a, b"pw", "a") == ("yaml", b"same")


def test_wrong_passphrase_is_bad_passphrase_one_line(fast_kdf) -> None:
    data = _crypto.encrypt(b"payload", "right", "pickle")
    with pytest.raises(BadPassphrase) as info:
        _crypto.decrypt(data, "wrong", "app.etap")
    message = str(info.value)
    assert "wrong passphrase for app.etap" in message and "\n" not in message


def test_altered_ciphertext_is_refused_as_bad_passphrase(fast_kdf) -> None:
    data = bytearray(_crypto.encrypt(b"payload" * 20, "pw", "pickle"))
    data[-20] = ord("A") if data[-20] != ord("A") else ord("B")
    with pytest.raises(BadPassphrase):
        _crypto.decrypt(bytes(data), "pw", "x")


def test_altered_header_format_is_refused(fast_kdf) -> None:
    data = _crypto.encrypt(b"payload", "pw", "yaml")
    forged = data.replace(b"format=yaml", b"format=pickle", 1)
    with pytest.raises(PersistError, match="header was altered"):
        _crypto.decrypt(forged, "pw", "x")


def test_absurd_scrypt_parameters_are_refused_before_any_work() -> None:
    data = b"TAPSTER-ENCRYPTED v1 format=pickle scrypt n=1073741824 r=8 p=1 salt=AAAAAAAAAAAAAAAAAAAAAA\ntoken\n"
    start = time.perf_counter()
    with pytest.raises(PersistError, match="refuses"):
        _crypto.decrypt(data, "pw", "hostile.etap")
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    "header, match",
    [
        (b"TAPSTER-ENCRYPTED v9 format=pickle\n", "version v9"),
        (b"TAPSTER-ENCRYPTED v1 format=pickle scrypt n=abc r=8 p=1 salt=AAAA\n", "damaged"),
        (b"TAPSTER-ENCRYPTED v1 format=pick$le scrypt n=1024 r=8 p=1 salt=AAAAAAAAAAAA\n", "damaged"),
        (b"TAPSTER-ENCRYPTED v1 no newline at all", "damaged encryption header"),
    ],
)
def test_damaged_headers_are_clear_errors(header: bytes, match: str) -> None:
    with pytest.raises(PersistError, match=match):
        _crypto.decrypt(header + b"token", "pw", "x.etap")


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(PersistError, match="empty passphrase"):
        _crypto.encrypt(b"x", "", "pickle")


def test_text_and_utf8_bytes_passphrases_agree(fast_kdf) -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    data = _crypto.encrypt(b"x", composed, "pickle")
    assert _crypto.decrypt(data, decomposed.encode("utf-8"), "x")[1] == b"x"


# -- through tapster.core.persist --------------------------------------------------------


def test_file_on_disk_is_ciphertext(tmp_path: Path, fast_kdf) -> None:
    path = tmp_path / "demo.etap"
    persist.save(make_app(), str(path), passphrase="pw")
    data = path.read_bytes()
    assert data.startswith(b"TAPSTER-ENCRYPTED v1 format=pickle ")
    for plain in (b"TopSecretQuote", b"tapster.core.service", b"Application", b"marker", b"svc", b"demo\x94"):
        assert plain not in data
    assert persist.is_encrypted(str(path))
    loaded = persist.load(str(path), passphrase="pw")
    assert loaded.getServiceNamed("svc").marker == "TopSecretQuote"
    assert (loaded.uid, loaded.gid, loaded.persistStyle) == (1000, "staff", "pickle")


def test_encrypted_yaml_remembers_its_inner_format(tmp_path: Path, fast_kdf) -> None:
    from tapster.core.plugin import build_application as build

    app = build("qotd", ["--port", "tcp:0:interface=127.0.0.1", "--static", "TopSecretQuote"], appname="q")
    path = tmp_path / "q.eyaml"
    persist.save(app, str(path), passphrase="pw")  # format from the .eyaml extension
    data = path.read_bytes()
    assert b"format=yaml" in data.split(b"\n")[0] and b"TopSecretQuote" not in data and b"plugin" not in data
    loaded = persist.load(str(path), passphrase="pw")
    assert loaded.persistStyle == "yaml"
    assert loaded.getServiceNamed("qotd").args[1].quoter.getQuote() == "TopSecretQuote"


def test_is_encrypted_is_false_for_clear_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "clear.tap"
    persist.save(make_app(), str(path))
    assert not persist.is_encrypted(str(path))
    assert not persist.is_encrypted(str(tmp_path / "missing.etap"))
    assert not persist.is_encrypted(str(tmp_path))


def test_loading_without_passphrase_says_it_is_encrypted(tmp_path: Path, fast_kdf) -> None:
    path = tmp_path / "demo.etap"
    persist.save(make_app(), str(path), passphrase="pw")
    with pytest.raises(PersistError, match="is encrypted: a passphrase is needed") as info:
        persist.load(str(path))
    assert not isinstance(info.value, BadPassphrase)


def test_wrong_passphrase_leaves_the_file_untouched(tmp_path: Path, fast_kdf) -> None:
    path = tmp_path / "demo.etap"
    persist.save(make_app(), str(path), passphrase="pw")
    before, stat = path.read_bytes(), path.stat()
    with pytest.raises(BadPassphrase):
        persist.load(str(path), passphrase="nope")
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stat.st_mtime_ns


def test_application_save_keeps_encryption_and_never_writes_the_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_kdf
) -> None:
    monkeypatch.chdir(tmp_path)
    persist.save(make_app(), "demo.etap", passphrase="hunter2-passphrase")
    app = persist.load("demo.etap", passphrase="hunter2-passphrase")
    assert app.save("shutdown") == "demo-shutdown.etap"
    assert persist.is_encrypted("demo-shutdown.etap")
    again = persist.load("demo-shutdown.etap", passphrase="hunter2-passphrase")
    assert again.getServiceNamed("svc").marker == "TopSecretQuote"
    # the passphrase lives in memory only: not in a pickle, not in the decrypted plaintext
    assert b"hunter2" not in pickle.dumps(app)
    _, plaintext = _crypto.decrypt(Path("demo-shutdown.etap").read_bytes(), "hunter2-passphrase", "x")
    assert b"hunter2" not in plaintext


def test_saving_in_clear_on_purpose_makes_later_saves_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            fast_kdf) -> None:
    monkeypatch.chdir(tmp_path)
    persist.save(make_app(), "demo.etap", passphrase="pw")
    app = persist.load("demo.etap", passphrase="pw")
    persist.save(app, "demo.tap")
    assert app.save("later") == "demo-later.tap" and not persist.is_encrypted("demo-later.tap")


def test_encrypted_name_without_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PersistError, match="named like an encrypted file"):
        persist.save(make_app(), str(tmp_path / "demo.etap"))
    assert list(tmp_path.iterdir()) == []


def test_encrypted_names_map_to_their_formats() -> None:
    assert persist.named_format("x.etap")[0].name == "pickle" and persist.named_format("x.etap")[1]
    assert persist.named_format("x.eyaml") == (persist.format_for("yaml"), True)
    assert persist.named_format("x.yaml") == (persist.format_for("yaml"), False)
    assert persist.named_format("x.txt") == (None, False)
    assert persist.extension_for(persist.format_for("yaml"), True) == "eyaml"
