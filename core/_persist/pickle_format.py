"""The ``pickle`` application format (``.tap``): fastest, and loading runs code (trusted files only).

A file is two pickles back to back: a small header, ``("tapster-application",
FORMAT_VERSION)``, then the application. The header is read by an unpickler
that can name no class at all, so a file's version is known before any of
its objects is rebuilt. A file without the header (written before the format
recorded its version) is read as version 0: the application alone.

Class paths are read through the alias table
(:mod:`tapster.core._persist.aliases`), so files naming ``core.service`` or
``plugins.qotd`` (before the ``tapster.*`` namespace) still load.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from tapster.core.errors import PersistError

__all__ = ["dump", "load", "sniff", "FORMAT_VERSION", "HEADER_TAG"]

FORMAT_VERSION = 1
HEADER_TAG = "tapster-application"


def dump(app: Any) -> bytes:
    try:
        header = pickle.dumps((HEADER_TAG, FORMAT_VERSION), protocol=pickle.HIGHEST_PROTOCOL)
        return header + pickle.dumps(app, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise PersistError(f"cannot save the application as pickle: {e}") from e


class _HeaderUnpickler(pickle.Unpickler):
    """Reads the header: plain data only, so it refuses to name any class."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError("not a header")


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        from tapster.core._persist.aliases import current_path

        return super().find_class(*current_path(module, name))


def _version(stream: io.BytesIO) -> int:
    """The version the header at the start of ``stream`` gives (stream left after it), or 0 if none."""
    try:
        header = _HeaderUnpickler(stream).load()
    except Exception:  # noqa: BLE001 - no header: an application pickled alone (version 0)
        header = None
    if isinstance(header, tuple) and len(header) == 2 and header[0] == HEADER_TAG and isinstance(header[1], int):
        return header[1]
    stream.seek(0)
    return 0


def load(data: bytes, filename: str) -> Any:
    stream = io.BytesIO(data)
    version = _version(stream)
    if version > FORMAT_VERSION:
        raise PersistError(
            f"{filename}: written in pickle format {version}; this tapster reads formats up to "
            f"{FORMAT_VERSION} (upgrade tapster)"
        )
    try:
        return _Unpickler(stream).load()
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise PersistError(
            f"{filename} is not a readable pickled application ({type(e).__name__}: {e}); rebuild it with mktap"
        ) from e


def sniff(head: bytes) -> bool:
    # Protocol 2+ pickles start with PROTO (0x80) and the protocol number.
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= pickle.HIGHEST_PROTOCOL
