"""Encryption headers from strangers: every parameter checked before any key is derived, one line each."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from tapster.core import persist
from tapster.core._persist import crypto
from tapster.core.errors import PersistError
from tapster.core.service import Application

SALT = base64.urlsafe_b64encode(b"0123456789abcdef").rstrip(b"=").decode()


def header_file(tmp_path: Path, params: str) -> Path:
    path = tmp_path / "app.etap"
    path.write_bytes(f"TAPSTER-ENCRYPTED v1 format=pickle scrypt {params} salt={SALT}\n".encode() + b"gAAAAA\n")
    return path


@pytest.mark.parametrize("params", [
    "n=65536 r=1 p=1",           # within the memory cap, but OpenSSL needs n < 2**(16*r)
    "n=2 r=2097152 p=1",         # 128*n*r*p says 512 MiB; scrypt really needs 1.3 GB
    "n=1024 r=8 p=1073741824",   # p*r too large for scrypt
    "n=3 r=8 p=1",               # n not a power of two
    "n=" + "9" * 5000 + " r=8 p=1",  # more digits than int() takes
    "n=" + "9" * 4000 + " r=8 p=1",  # an int, absurdly large
    "n=16 r=" + "9" * 4000 + " p=1",  # an r whose 2**(16*r) would never finish
    "n=16 r=8 p=0",
])
def test_hostile_scrypt_parameters_are_refused_at_once(tmp_path: Path, params: str) -> None:
    path = header_file(tmp_path, params)
    start = time.monotonic()
    with pytest.raises(PersistError) as info:
        persist.load(str(path), passphrase=b"whatever")
    assert time.monotonic() - start < 1
    message = str(info.value)
    assert "\n" not in message and len(message) < 1000
    assert "it was not written by tapster" in message or "damaged encryption header" in message


def test_the_real_memory_cost_is_what_is_capped() -> None:
    assert crypto.scrypt_memory(2, 2097152, 1) > 1_300_000_000 > 128 * 2 * 2097152 * 1
    assert crypto.scrypt_memory(crypto.SCRYPT_N, crypto.SCRYPT_R, crypto.SCRYPT_P) < 70 * 1024 * 1024


def test_files_tapster_writes_still_open(tmp_path: Path) -> None:
    path = tmp_path / "ok.etap"
    persist.save(Application("ok"), str(path), passphrase=b"pw")
    assert persist.load(str(path), passphrase=b"pw").name == "ok"
