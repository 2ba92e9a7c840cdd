"""Password hashes (salted, slow, constant-time checks) and the per-address slow-down."""

from __future__ import annotations

import hmac

import pytest

from tapster.core.testing import Clock
from tapster.plugins._console import auth
from tapster.plugins._console.auth import Credentials, HashError, Throttle, check_hash, check_password, hash_password


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password("correct horse")


def test_hash_is_salted_scrypt_without_the_password(stored: str) -> None:
    assert stored.startswith("scrypt$16384$8$1$")
    assert "correct horse" not in stored
    assert hash_password("correct horse") != stored  # a new salt every time


def test_right_and_wrong_passwords(stored: str) -> None:
    assert check_password(stored, "correct horse")
    assert not check_password(stored, "correct horse ")
    assert not check_password(stored, "")


def test_non_ascii_password_round_trips() -> None:
    stored = hash_password("pässwörd ✓", salt=b"0" * 16)
    assert check_password(stored, "pässwörd ✓")


def test_comparison_is_constant_time(stored: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    check_password(stored, "nope")
    assert calls


def test_pbkdf2_hashes_are_understood() -> None:
    import base64
    import hashlib

    salt = b"s" * 16
    key = hashlib.pbkdf2_hmac("sha256", b"pw", salt, 1000, 32)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    stored = f"pbkdf2-sha256$1000${b64(salt)}${b64(key)}"
    assert check_password(stored, "pw") and not check_password(stored, "px")


def test_pbkdf2_is_used_where_scrypt_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(auth.hashlib, "scrypt")
    monkeypatch.setattr(auth, "_PBKDF2_ITERATIONS", 1000)
    stored = hash_password("pw")
    assert stored.startswith("pbkdf2-sha256$1000$")
    assert check_password(stored, "pw")


@pytest.mark.parametrize("bad", [
    "secret",
    "scrypt$16384$8$1$salt",
    "scrypt$3$8$1$c2FsdA$aGFzaA",  # N not a power of two
    "scrypt$16384$8$1$!!$aGFzaA",
    "pbkdf2-sha256$10$c2FsdA$aGFzaA",  # too few iterations
    "md5$x$y",
])
def test_malformed_hashes_are_refused(bad: str) -> None:
    with pytest.raises(HashError):
        check_hash(bad)


def test_check_hash_accepts_its_own_output(stored: str) -> None:
    assert check_hash(stored) == stored


def test_credentials_need_both_name_and_password(stored: str) -> None:
    creds = Credentials("admin", stored)
    assert creds.check("admin", "correct horse")
    assert not creds.check("root", "correct horse")
    assert not creds.check("admin", "wrong")
    assert not Credentials("admin", None).check("admin", "")


def test_a_wrong_user_name_costs_a_hash_too(stored: str, monkeypatch: pytest.MonkeyPatch) -> None:
    checked = []
    monkeypatch.setattr(auth, "check_password", lambda s, p: checked.append(p) or False)
    Credentials("admin", stored).check("nobody", "x")
    assert checked == ["x"]


# -- throttle ------------------------------------------------------------------------


def test_first_failures_are_free_then_delays_double_up_to_a_cap() -> None:
    clock = Clock()
    throttle = Throttle(clock.seconds, free=3, base=1.0, maximum=8.0)
    delays = []
    for _ in range(8):
        delays.append(throttle.delay("10.0.0.1"))
        throttle.failed("10.0.0.1")
    assert delays == [0, 0, 0, 1, 2, 4, 8, 8]
    assert throttle.delay("10.0.0.2") == 0  # per address


def test_success_and_time_forget_an_address() -> None:
    clock = Clock()
    throttle = Throttle(clock.seconds, free=1, forget=60)
    throttle.failed("a")
    throttle.failed("b")
    assert throttle.delay("a") == 1
    throttle.succeeded("a")
    assert throttle.delay("a") == 0
    clock.advance(61)
    assert throttle.failures("b") == 0 and throttle.delay("b") == 0


def test_throttle_memory_is_bounded() -> None:
    throttle = Throttle(Clock().seconds, capacity=10)
    for i in range(100):
        throttle.failed(f"10.0.0.{i}")
    assert len(throttle._records) == 10
    assert throttle.failures("10.0.0.99") == 1 and throttle.failures("10.0.0.0") == 0
