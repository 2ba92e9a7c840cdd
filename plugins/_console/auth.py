"""Credentials for the console: salted slow hashes, constant-time checks, a per-address slow-down.

Only a hash is ever kept in an application file: ``scrypt$N$r$p$SALT$HASH``
(salt and hash in unpadded URL-safe base64), or ``pbkdf2-sha256$ITER$SALT$HASH``
where this Python's OpenSSL has no scrypt. The format is plain text so that
it saves unchanged in every application format and can be given back to
``--password-hash``.

:class:`Throttle` remembers failed logins per peer address (in memory only):
the first few are free, then each further attempt from that address waits
longer (1 s, 2 s, 4 s... up to a minute), until the address has been quiet
for a while or logs in. Attempts still waiting or being checked count too
(:class:`Attempt`), so parallel connections get no more guesses than one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "hash_password",
    "check_password",
    "check_hash",
    "Credentials",
    "Throttle",
    "Attempt",
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


check_hash.coerceDoc = "A hash printed by a previous build (scrypt$...), never a password."  # type: ignore[attr-defined]  # a function attribute: the rule --help shows


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


class Attempt:
    """One login attempt from an address, counted from the moment it is made until its verdict.

    :meth:`Throttle.reserve` hands it out with :attr:`delay`, the seconds it
    must wait before its password is checked. It ends exactly once: with
    :meth:`failed` or :meth:`succeeded` once the password has been checked,
    or with :meth:`abandoned` if it never was (the client left while
    waiting). Until then it is "in flight" and counts against its address
    as a failure would, so that guesses waiting to be checked cannot all
    be let through before the first verdict is in.
    """

    __slots__ = ("throttle", "address", "start", "delay", "done")

    def __init__(self, throttle: Throttle, address: str, start: float, delay: float) -> None:
        self.throttle = throttle
        self.address = address
        self.start = start  # when it may be checked, in the throttle's clock
        self.delay = delay
        self.done = False

    def failed(self) -> int:
        """The password was checked and was wrong: a failure; returns the address's count."""
        if self._end():
            return self.throttle.failed(self.address)
        return self.throttle.failures(self.address)

    def succeeded(self) -> None:
        """The password was right: the address is forgotten (other attempts in flight stay counted)."""
        if self._end():
            self.throttle.succeeded(self.address)

    def abandoned(self) -> None:
        """Never checked: its place is given back (the attempts after it keep theirs)."""
        self._end()

    def _end(self) -> bool:
        if self.done:
            return False
        self.done = True
        record = self.throttle._records.get(self.address)
        if record is not None and self in record.waiting:
            record.waiting.remove(self)
        return True

    def __repr__(self) -> str:
        return f"<Attempt from {self.address} delay={self.delay:g}{' done' if self.done else ''}>"


@dataclass
class _Record:
    failures: int = 0
    last: float = 0.0  # time of the last failure
    waiting: list[Attempt] = field(default_factory=list)  # in flight: reserved, no verdict yet


class Throttle:
    """Failed logins per address and the delay the next attempt from there must wait.

    ``free`` failures cost nothing; the next waits ``base`` seconds, each
    further one twice as long, up to ``maximum``. An address is forgotten
    after ``forget`` seconds without a failure, or when it logs in. At most
    ``capacity`` addresses are remembered (the stalest is dropped first), so
    a flood of addresses cannot grow memory without bound.

    That schedule is a promise about guesses made *one after another*; it
    must hold as well for guesses made at once over parallel connections,
    whose checks (a slow hash in a worker thread) are still running when the
    next one arrives. So every attempt is counted from the moment it is made
    (:meth:`reserve`), not only once it has failed: the n-th attempt in
    flight is counted as if the n-1 before it had failed already, and it
    waits its delay *after the one before it was let through*, as it would
    have waited after that one's verdict had it come second. Five
    connections guessing at once are checked at 0, 0, 0, 1 and 3 s, as one
    connection guessing five times would be; ten at once get no more than
    that either. An attempt abandoned before its check gives back its place
    (the failure it was counted as), but the attempts behind it keep theirs:
    leaving early moves no one forward and pushes no one back.

    The price of counting per address: everyone behind one address (every
    local user of a console on 127.0.0.1) shares its schedule, and an
    attempt made behind a queue of others waits for them.
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
        self._records: dict[str, _Record] = {}

    def _wait(self, ahead: int) -> float:
        """The wait of an attempt with ``ahead`` failures (recorded or presumed) before it."""
        extra = ahead - self.free
        if extra < 0:
            return 0.0
        return min(self.base * 2.0 ** min(extra, 64), self.maximum)

    def _record(self, address: str) -> _Record | None:
        """The address's record, dropped first if it has gone stale."""
        record = self._records.get(address)
        if record is not None and not record.waiting and (
            not record.failures or self.clock() - record.last > self.forget
        ):
            del self._records[address]
            return None
        return record

    def _fresh(self, address: str) -> _Record:
        """The address's record, made (or moved to the fresh end) for a change."""
        record = self._record(address) or _Record()
        self._records.pop(address, None)
        self._records[address] = record  # re-inserted: dicts keep the freshest last
        if len(self._records) > self.capacity:
            # The stalest first, but never one with attempts in flight while another will do.
            idle = next((a for a, r in self._records.items() if not r.waiting and a != address), None)
            del self._records[idle if idle is not None else next(iter(self._records))]
        return record

    def failures(self, address: str) -> int:
        """Failures recorded for ``address`` (attempts in flight not included)."""
        record = self._record(address)
        return record.failures if record is not None else 0

    def inFlight(self, address: str) -> int:
        """Attempts from ``address`` reserved and not yet ended."""
        record = self._record(address)
        return len(record.waiting) if record is not None else 0

    def delay(self, address: str) -> float:
        """Seconds the next attempt from ``address`` would wait if it were made now."""
        record = self._record(address)
        if record is None:
            return 0.0
        now = self.clock()
        after = max([now] + [a.start for a in record.waiting])
        return after + self._wait(record.failures + len(record.waiting)) - now

    def reserve(self, address: str) -> Attempt:
        """Count a new attempt from ``address`` in flight; its ``delay`` is how long it must wait."""
        record = self._fresh(address)
        now = self.clock()
        after = max([now] + [a.start for a in record.waiting])
        start = after + self._wait(record.failures + len(record.waiting))
        attempt = Attempt(self, address, start, start - now)
        record.waiting.append(attempt)
        return attempt

    def failed(self, address: str) -> int:
        """Record a failure; returns the address's count."""
        record = self._fresh(address)
        record.failures += 1
        record.last = self.clock()
        return record.failures

    def succeeded(self, address: str) -> None:
        """Forget the address's failures (attempts still in flight from it stay counted)."""
        record = self._records.get(address)
        if record is None:
            return
        if record.waiting:
            record.failures = 0
        else:
            del self._records[address]
