"""Passphrase encryption of saved applications (``.etap``, ``.etax``, ``.etas``, ``.eyaml``).

An encrypted file is one header line, then a Fernet token::

    TAPSTER-ENCRYPTED v1 format=pickle scrypt n=65536 r=8 p=1 salt=<base64url>
    gAAAAAB...

Why it is built this way:

* **Fernet** (AES-128-CBC with HMAC-SHA256, from ``cryptography``) is
  authenticated: a wrong passphrase or a single altered byte is detected
  before anything is decrypted, so no byte of an attacker's file ever reaches
  the unpickler or a parser. (The classic mktap used unsalted,
  unauthenticated AES-ECB.)
* The key comes from **scrypt** with a random 16-byte salt per file, so equal
  passphrases give unrelated keys and every guess costs an attacker what it
  costs us: n=2**16, r=8, p=1 uses 64 MiB of memory and takes about 0.15 s
  on a 2020s laptop core. The parameters are written in the header, so files
  stay readable if the defaults grow; a header asking for absurd parameters
  (a memory bomb) is refused before any work.
* The header is readable text, so ``twistd`` and ``tapconvert`` can tell an
  encrypted file (and its inner format) before asking for a passphrase. It is
  repeated at the start of the encrypted plaintext and compared after
  decryption: an edited header (say ``format=yaml`` swapped for
  ``format=pickle``) is refused rather than trusted.

``cryptography`` is imported only when a file is actually encrypted or
decrypted, never on the ``--help`` paths.
"""

from __future__ import annotations

import base64
import os
import unicodedata
from dataclasses import dataclass

from tapster.core.errors import BadPassphrase, PersistError

__all__ = [
    "MAGIC",
    "SCRYPT_N",
    "SCRYPT_R",
    "SCRYPT_P",
    "Header",
    "is_encrypted",
    "read_header",
    "encrypt",
    "decrypt",
]

MAGIC = b"TAPSTER-ENCRYPTED"
VERSION = "v1"

#: scrypt cost parameters for new files (see the module docstring).
SCRYPT_N = 2**16
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16

#: Refuse headers whose parameters would need more than this much memory (see :func:`scrypt_memory`).
_MAX_SCRYPT_MEMORY = 512 * 1024 * 1024


def scrypt_memory(n: int, r: int, p: int) -> int:
    """The bytes scrypt really allocates for (n, r, p): its V array (128·r·n), B (128·r·p) and XY (256·r).

    Estimating only 128·n·r·p lets ``n=2 r=2097152`` pass for 512 MiB when it
    needs 1.3 GB: the header of a file from a stranger must not choose that.
    """
    return 128 * r * n + 128 * r * p + 256 * r
_MAX_HEADER = 512


@dataclass(frozen=True)
class Header:
    """What the first line of an encrypted file says: the inner format and the KDF parameters."""

    format: str
    n: int
    r: int
    p: int
    salt: bytes

    def line(self) -> bytes:
        salt = base64.urlsafe_b64encode(self.salt).rstrip(b"=").decode("ascii")
        return (
            f"{MAGIC.decode()} {VERSION} format={self.format} scrypt n={self.n} r={self.r} p={self.p} salt={salt}\n"
        ).encode("ascii")


def is_encrypted(head: bytes) -> bool:
    """Whether data starting with ``head`` is an encrypted application."""
    return head.startswith(MAGIC + b" ")


def _passphrase_bytes(passphrase: str | bytes) -> bytes:
    """UTF-8 of the NFC form: the same typed passphrase gives the same key on every system.

    Bytes (a passphrase file) that are UTF-8 get the same treatment, so a
    passphrase typed at a prompt and the same one read from a file agree.
    """
    if isinstance(passphrase, (bytes, bytearray)):
        raw = bytes(passphrase)
        try:
            passphrase = raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def read_header(data: bytes, filename: str) -> tuple[Header, bytes, bytes]:
    """Parse the header line: (header, the line itself, the token after it)."""
    end = data.find(b"\n", 0, _MAX_HEADER)
    if not is_encrypted(data):
        raise PersistError(f"{filename} is not an encrypted application (no {MAGIC.decode()} header)")
    if end < 0:
        raise PersistError(
            f"{filename} has a damaged encryption header (no line end in its first {_MAX_HEADER} bytes); "
            "it was not written by tapster"
        )
    line, token = data[: end + 1], data[end + 1 :].strip()
    words = line.decode("ascii", "replace").split()
    if len(words) < 2 or words[1] != VERSION:
        found = words[1] if len(words) > 1 else "none"
        raise PersistError(
            f"{filename} is encrypted with format version {found}, which this tapster does not know "
            f"(it reads {VERSION}); upgrade tapster"
        )
    fields = dict(word.partition("=")[::2] for word in words[2:] if "=" in word)
    try:
        if "scrypt" not in words:
            raise ValueError("no key derivation named")
        fmt = fields["format"]
        if not fmt or not all(c.isalnum() or c in "-_" for c in fmt):
            raise ValueError(f"bad format name {fmt!r}")
        n, r, p = int(fields["n"]), int(fields["r"]), int(fields["p"])
        salt_text = fields["salt"]
        salt = base64.urlsafe_b64decode(salt_text + "=" * (-len(salt_text) % 4))
    except (KeyError, ValueError) as e:
        raise PersistError(f"{filename} has a damaged encryption header ({e}); it cannot be decrypted") from None
    # OpenSSL also wants n < 2**(16·r) and p·r below 2**30; a header breaking a rule is refused here,
    # by name, rather than by the library with an error of its own.
    if (n < 2 or n & (n - 1) or r < 1 or p < 1 or n > 2**40 or r > 2**24 or p > 2**24  # sizes first: cheap
            or n >= 2 ** (16 * r) or p * r >= 2**30
            or scrypt_memory(n, r, p) > _MAX_SCRYPT_MEMORY or len(salt) < 8):
        raise PersistError(
            f"{filename} asks for scrypt parameters tapster refuses (n={n} r={r} p={p}, "
            f"salt of {len(salt)} bytes); it was not written by tapster"
        )
    return Header(fmt, n, r, p, salt), line, token


def _fernet(passphrase: str | bytes, header: Header):  # -> cryptography.fernet.Fernet
    try:
        from cryptography.fernet import Fernet
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    except ImportError:  # pragma: no cover - cryptography is a dependency
        raise PersistError("encrypted applications need the cryptography package: pip install cryptography") from None
    try:
        kdf = Scrypt(salt=header.salt, length=32, n=header.n, r=header.r, p=header.p)
        key = kdf.derive(_passphrase_bytes(passphrase))
    except (ValueError, MemoryError) as e:  # the library refused the parameters after all
        raise PersistError(f"the encryption header asks for scrypt parameters that cannot be used ({e}); "
                           "the file was not written by tapster") from None
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plaintext: bytes, passphrase: str | bytes, inner_format: str) -> bytes:
    """The encrypted file's bytes: header line, then the Fernet token of header + ``plaintext``."""
    if not _passphrase_bytes(passphrase):
        raise PersistError("an empty passphrase protects nothing: choose a real one")
    header = Header(inner_format, SCRYPT_N, SCRYPT_R, SCRYPT_P, os.urandom(SALT_BYTES))
    line = header.line()
    return line + _fernet(passphrase, header).encrypt(line + plaintext) + b"\n"


def decrypt(data: bytes, passphrase: str | bytes, filename: str) -> tuple[str, bytes]:
    """(inner format name, plaintext) of an encrypted file, authenticated before anything else.

    :raises BadPassphrase: the passphrase is wrong or the file was altered
        (the two cannot be told apart, by design).
    """
    header, line, token = read_header(data, filename)
    from cryptography.fernet import InvalidToken

    try:
        plaintext = _fernet(passphrase, header).decrypt(token)
    except InvalidToken:
        raise BadPassphrase(f"wrong passphrase for {filename} (or the file was altered); nothing was loaded") from None
    if not plaintext.startswith(line):
        raise PersistError(f"{filename}: the encryption header was altered after the file was written; refusing it")
    return header.format, plaintext[len(line) :]
