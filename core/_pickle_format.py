"""The ``pickle`` application format (``.tap``): fastest, and loading runs code (trusted files only)."""

from __future__ import annotations

import pickle
from typing import Any

from core.errors import PersistError
from core.hookspecs import FormatSpec


def dump(app: Any) -> bytes:
    try:
        return pickle.dumps(app, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise PersistError(f"cannot save the application as pickle: {e}") from e


def load(data: bytes, filename: str) -> Any:
    try:
        return pickle.loads(data)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise PersistError(
            f"{filename} is not a readable pickled application ({type(e).__name__}: {e}); rebuild it with mktap"
        ) from e


def sniff(head: bytes) -> bool:
    # Protocol 2+ pickles start with PROTO (0x80) and the protocol number.
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= pickle.HIGHEST_PROTOCOL


SPEC = FormatSpec(
    name="pickle",
    extension="tap",
    description="Python pickle: fastest; loading runs code, so load trusted files only",
    dump=dump,
    load=load,
    sniff=sniff,
    safe=False,
)
