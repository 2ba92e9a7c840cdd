"""Fixtures any test may use.

- ``shared_reactor``: the process-wide reactor, forgotten (and its loop
  closed) after the test, so no test inherits another's sockets or timers.
- ``run_until``: ``run_until(reactor, predicate, timeout=5.0)`` runs the
  reactor until ``predicate()`` is true or the deadline passes (polling, no
  fixed sleep) and returns ``predicate()``.
- ``short_tmp``: a short temporary directory, for UNIX socket paths (the
  kernel limits them to ~107 bytes; ``tmp_path`` can be longer).
- ``self_signed``: ``self_signed(directory, name='server', passphrase=None)``
  writes a throwaway EC key and a self-signed certificate for ``localhost``
  and ``127.0.0.1`` and returns ``(key_path, cert_path)``. Needs the
  ``cryptography`` package (skips without it).
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def shared_reactor() -> Iterator[Any]:
    from tapster.core.testing import freshReactor

    with freshReactor() as reactor:
        yield reactor


def _run_until(reactor: Any, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout

    def check() -> None:
        if predicate() or time.monotonic() > deadline:
            reactor.stop()
        else:
            reactor.callLater(0.005, check)

    reactor.callLater(0, check)
    reactor.run(installSignalHandlers=False)
    return predicate()


@pytest.fixture
def run_until() -> Callable[..., bool]:
    return _run_until


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tap", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _self_signed(directory: Path, name: str = "server", passphrase: bytes | None = None) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    encryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    key_path = Path(directory) / f"{name}.key"
    cert_path = Path(directory) / f"{name}.crt"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_path), str(cert_path)


@pytest.fixture
def self_signed() -> Callable[..., tuple[str, str]]:
    pytest.importorskip("cryptography")
    return _self_signed
