"""Getting a passphrase from the user: a prompt without echo, or a file for scripts.

Shared by mktap and tapconvert. A new passphrase is asked twice (a typo
would otherwise lock the file for good); one that opens an existing file is
asked once. ``getpass`` is looked up at call time so tests can replace it.
"""

from __future__ import annotations

from core.errors import TapsterError

__all__ = ["PassphraseError", "read_passphrase_file", "ask", "obtain"]


class PassphraseError(TapsterError):
    """No usable passphrase: the two entries differ, it is empty, or its file cannot be read."""


def read_passphrase_file(path: str) -> bytes:
    """The first line of ``path``, without its line ending (a file may hold a trailing newline)."""
    try:
        with open(path, "rb") as f:
            data = f.read(64 * 1024)
    except OSError as e:
        raise PassphraseError(f"cannot read the passphrase file {path}: {e.strerror or e}") from None
    passphrase = data.split(b"\n", 1)[0].rstrip(b"\r")
    if not passphrase:
        raise PassphraseError(f"the passphrase file {path} is empty (its first line is the passphrase)")
    return passphrase


def ask(prompt: str, confirm: bool) -> str:
    """Ask on the terminal without echo; ``confirm`` asks a second time and compares."""
    import getpass

    try:
        first = getpass.getpass(prompt)
        if not first:
            raise PassphraseError("the passphrase is empty; nothing was written")
        if confirm and getpass.getpass("Repeat the passphrase: ") != first:
            raise PassphraseError("the two passphrases differ; nothing was written")
    except EOFError:
        raise PassphraseError("no passphrase was given (end of input); scripts use --passphrase-file FILE") from None
    return first


def obtain(passphrase_file: str | None, prompt: str, confirm: bool) -> str | bytes:
    """From ``passphrase_file`` when given, else asked with ``prompt``."""
    if passphrase_file is not None:
        return read_passphrase_file(passphrase_file)
    return ask(prompt, confirm)
