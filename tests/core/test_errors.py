"""Error messages read as one clean sentence that names the thing and the fix."""

from __future__ import annotations

from tapster.core.errors import CannotListenError, ConnectionRefusedError


def test_connect_error_has_no_stray_period() -> None:
    text = str(ConnectionRefusedError("Connect call failed", "127.0.0.1:1"))
    assert text == "Connection was refused by the other side: Connect call failed: 127.0.0.1:1"


def test_address_in_use_hint_fits_ports_and_paths() -> None:
    in_use = OSError(98, "Address already in use")
    assert str(CannotListenError("127.0.0.1", 80, in_use)).endswith("choose another port)")
    assert str(CannotListenError("/run/x.sock", None, in_use)).endswith("choose another path)")
    assert "127.0.0.1:80" in str(CannotListenError("127.0.0.1", 80, in_use))
    assert "[::1]:80" in str(CannotListenError("::1", 80, in_use))


def test_every_exception_of_the_library_is_in_the_one_tree() -> None:
    """Defined in tapster.core.errors, below TapsterError, and drawn in its docstring."""
    import importlib
    import pkgutil

    import tapster.core
    from tapster.core import errors

    found = {}
    for info in pkgutil.walk_packages(tapster.core.__path__, "tapster.core."):
        module = importlib.import_module(info.name)
        for _name, obj in vars(module).items():
            if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__.startswith("tapster."):
                if not obj.__name__.startswith("_"):
                    found[obj.__name__] = obj  # by its own name: usage.error is UsageError
    assert found, "no exception classes found: the scan is broken"
    for name, cls in found.items():
        assert cls.__module__ == "tapster.core.errors", f"{name} is defined in {cls.__module__}"
        assert issubclass(cls, errors.TapsterError), name
        assert name in errors.__doc__, f"{name} is missing from the tree in tapster.core.errors"
        assert name in errors.__all__, name
