"""Credentials for the console: salted slow hashes, constant-time checks, a per-address slow-down.

Only a hash is ever kept in an application file: ``scrypt$N$r$p$SALT$HASH``
(salt and hash in unpadded URL-safe base64), or ``pbkdf2-sha256$ITER$SALT$HASH``
where this Python's OpenSSL has no scrypt. The format is plain text so that
it saves unchanged in every application format and can be given back to
``--password-hash``.

:class:`Throttle` remembers failed logins per peer address (in memory only):
the first few are free, then each further attempt from that address waits
longer (1 s, 2 s, 4 s... up to a minute), until the address has been quiet
for a while or logs in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Callable

__all__ = [
    "hash_password",
    "check_password",
    "check_hash",
    "Credentials",
    "Throttle",
    "HashError",
]

_SCRYPT = (2**14, 8, 1)  # ~50 ms and 16 MiB per check: slow for a guesser, quick for a login
_PBKDF2_ITERATIONS = 600_000
_SALT_BYTES = 16
_KEY_BYTES = 32


class HashError(ValueError):
    """A stored hash is not in a format this module writes."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A new salted slow hash of ``password`` (scrypt where available)."""
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    secret = password.encode("utf-8")
    if hasattr(hashlib, "scrypt"):
        n, r, p = _SCRYPT
        key = hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=_KEY_BYTES)
        return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"
    key = hashlib.pbkdf2_hmac("sha256", secret, salt, _PBKDF2_ITERATIONS, _KEY_BYTES)
    return f"pbkdf2-sha256${_PBKDF2_ITERATIONS}${_b64(salt)}${_b64(key)}"


def _derive(stored: str, password: str) -> tuple[bytes, bytes]:
    """(expected, computed) keys for ``password`` under ``stored``'s algorithm and salt."""
    parts = stored.split("$")
    secret = password.encode("utf-8")
    try:
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = (int(x) for x in parts[1:4])
            salt, expected = _unb64(parts[4]), _unb64(parts[5])
            if not (1 < n <= 2**20 and n & (n - 1) == 0 and 0 < r <= 32 and 0 < p <= 16 and expected):
                raise HashError("scrypt parameters out of range")
            maxmem = 128 * r * (n + p + 2) + 1024 * 1024
            return expected, hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=len(expected), maxmem=maxmem)
        if parts[0] == "pbkdf2-sha256" and len(parts) == 4:
            iterations = int(parts[1])
            salt, expected = _unb64(parts[2]), _unb64(parts[3])
            if not (1000 <= iterations <= 10_000_000 and expected):
                raise HashError("pbkdf2 iterations out of range")
            return expected, hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, len(expected))
    except (ValueError, TypeError) as e:  # bad numbers or base64
        if isinstance(e, HashError):
            raise
        raise HashError(f"malformed password hash: {e}") from None
    raise HashError("not a password hash made by tapster (expected scrypt$... or pbkdf2-sha256$...)")


def check_hash(stored: str) -> str:
    """``stored`` if it is a well-formed hash, else :class:`HashError` (an option's coerce)."""
    _derive(stored, "")
    return stored


check_hash.coerceDoc = "A hash printed by a previous build (scrypt$...), never a password."  # type: ignore[attr-defined]


def check_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches ``stored``, compared in constant time."""
    expected, computed = _derive(stored, password)
    return hmac.compare_digest(expected, computed)


@dataclass
class Credentials:
    """A user name and a password hash (either may be None: then nobody logs in by password).

    :meth:`check` always spends the time of one hash, whether the user name
    is right or not, so a guesser learns nothing from the timing.
    """

    username: str
    passwordHash: str | None

    def check(self, username: str, password: str) -> bool:
        if self.passwordHash is None:
            return False
        password_ok = check_password(self.passwordHash, password)
        name_ok = hmac.compare_digest(username.encode("utf-8"), self.username.encode("utf-8"))
        return password_ok and name_ok


class Throttle:
    """Failed logins per address and the delay the next attempt from there must wait.

    ``free`` failures cost nothing; the next waits ``base`` seconds, each
    further one twice as long, up to ``maximum``. An address is forgotten
    after ``forget`` seconds without a failure, or when it logs in. At most
    ``capacity`` addresses are remembered (the stalest is dropped first), so
    a flood of addresses cannot grow memory without bound.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        free: int = 3,
        base: float = 1.0,
        maximum: float = 60.0,
        forget: float = 900.0,
        capacity: int = 4096,
    ) -> None:
        self.clock = clock
        self.free = free
        self.base = base
        self.maximum = maximum
        self.forget = forget
        self.capacity = capacity
        self._failures: dict[str, tuple[int, float]] = {}

    def failures(self, address: str) -> int:
        count, last = self._failures.get(address, (0, 0.0))
        if count and self.clock() - last > self.forget:
            del self._failures[address]
            return 0
        return count

    def delay(self, address: str) -> float:
        """Seconds the next attempt from ``address`` waits before it is checked."""
        extra = self.failures(address) - self.free
        if extra < 0:
            return 0.0
        return min(self.base * 2**extra, self.maximum)

    def failed(self, address: str) -> int:
        """Record a failure; returns the address's count."""
        count = self.failures(address) + 1
        self._failures.pop(address, None)
        self._failures[address] = (count, self.clock())  # re-inserted: dicts keep the freshest last
        while len(self._failures) > self.capacity:
            del self._failures[next(iter(self._failures))]
        return count

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
