"""TLS context factories that can be saved inside an application.

An ``ssl.SSLContext`` cannot be pickled, and an application file must not
carry one anyway: the certificate may be renewed between ``mktap`` and
``twistd``. So, as in Twisted, services hold a *context factory* that
remembers file names and builds the context when the port opens::

    from tapster.core import internet, ssl
    cf = ssl.DefaultOpenSSLContextFactory("server.key", "server.crt")
    internet.SSLServer(443, factory, cf).setServiceParent(application)

The context is built on the first :meth:`getContext` (not in ``__init__`` as
Twisted does), so ``mktap`` can write an application on a machine that does
not have the key; a missing or unreadable file is reported by
:class:`TLSContextError` when the server starts, naming the file.

Defaults are today's, not Twisted's of 2005: TLS 1.2 is the oldest version
offered, and clients verify the server's certificate and host name unless told
not to (Twisted's old ``ClientContextFactory`` did not verify).
"""

from __future__ import annotations

import os
import ssl as _ssl

from tapster.core.errors import TLSContextError

__all__ = [
    "TLSContextError",
    "DefaultOpenSSLContextFactory",
    "ClientContextFactory",
    "optionsForClientTLS",
    "SSL_METHODS",
]


# Twisted's ``sslmethod`` names (pyOpenSSL constants) mapped to the TLS
# versions offered: (minimum, maximum). The generic methods mean "every
# version this library still considers safe".
SSL_METHODS: dict[str, tuple[_ssl.TLSVersion, _ssl.TLSVersion]] = {
    "TLS_METHOD": (_ssl.TLSVersion.TLSv1_2, _ssl.TLSVersion.MAXIMUM_SUPPORTED),
    "SSLv23_METHOD": (_ssl.TLSVersion.TLSv1_2, _ssl.TLSVersion.MAXIMUM_SUPPORTED),
    "TLSv1_2_METHOD": (_ssl.TLSVersion.TLSv1_2, _ssl.TLSVersion.TLSv1_2),
    "TLSv1_3_METHOD": (_ssl.TLSVersion.TLSv1_3, _ssl.TLSVersion.TLSv1_3),
}

_INSECURE_METHODS = ("SSLv2_METHOD", "SSLv3_METHOD", "TLSv1_METHOD", "TLSv1_1_METHOD")


def check_sslmethod(sslmethod: str | None) -> str | None:
    """Return ``sslmethod`` if tapster knows it, else raise ValueError saying what to use.

    Shared with :mod:`tapster.core.endpoints`, which validates ``sslmethod=`` while
    parsing so that a typo is reported by ``mktap``, not at ``twistd`` start.
    """
    if sslmethod is None or sslmethod in SSL_METHODS:
        return sslmethod
    known = ", ".join(SSL_METHODS)
    if sslmethod in _INSECURE_METHODS:
        raise ValueError(
            f"sslmethod {sslmethod} is not supported: versions before TLS 1.2 are insecure (use one of {known})"
        )
    raise ValueError(f"unknown sslmethod {sslmethod!r} (use one of {known})")


def _set_versions(ctx: _ssl.SSLContext, sslmethod: str | None) -> None:
    low, high = SSL_METHODS[sslmethod or "TLS_METHOD"]
    ctx.minimum_version = low
    ctx.maximum_version = high


def _readable(path: str, what: str, keyword: str) -> bytes:
    """The file's bytes, or a TLSContextError naming it and the way out."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        reason = e.strerror or str(e)
        raise TLSContextError(
            f"cannot read TLS {what} file {path!r}: {reason} (check {keyword}= and the file's permissions)"
        ) from e


def _load_pair(ctx: _ssl.SSLContext, certfile: str, keyfile: str) -> None:
    """``load_cert_chain`` with errors that say which file is at fault.

    OpenSSL's own messages ("[SSL] PEM lib") name neither file, so each file
    is read first (missing/unreadable), then sniffed for its PEM header.
    """
    cert = _readable(certfile, "certificate", "certKey")
    key = cert if keyfile == certfile else _readable(keyfile, "private key", "privateKey")
    if b"-----BEGIN CERTIFICATE-----" not in cert:
        raise TLSContextError(
            f"TLS certificate file {certfile!r} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )
    if b"PRIVATE KEY-----" not in key:
        raise TLSContextError(
            f"TLS private key file {keyfile!r} holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)"
        )

    def no_passphrase() -> bytes:
        # Without a callback OpenSSL would prompt on the terminal of a daemon.
        raise TLSContextError(
            f"TLS private key file {keyfile!r} is encrypted: tapster cannot ask for its passphrase "
            f"(write a decrypted copy, e.g. openssl pkey -in {keyfile} -out plain.key, and keep it private)"
        )

    try:
        ctx.load_cert_chain(certfile, keyfile, password=no_passphrase)
    except TLSContextError:
        raise
    except _ssl.SSLError as e:
        if "KEY_VALUES_MISMATCH" in str(e) or "key values mismatch" in str(e):
            raise TLSContextError(
                f"TLS certificate {certfile!r} does not belong to private key {keyfile!r} (pair the right files)"
            ) from e
        raise TLSContextError(f"cannot load TLS certificate {certfile!r} with key {keyfile!r}: {e}") from e


class _ContextFactory:
    """Caches the built context; drops it when pickled."""

    _context: _ssl.SSLContext | None = None

    def _makeContext(self) -> _ssl.SSLContext:
        raise NotImplementedError

    def cacheContext(self) -> None:
        """Build the context now (Twisted name); :meth:`getContext` calls it when needed."""
        self._context = self._makeContext()

    def getContext(self) -> _ssl.SSLContext:
        """The ``ssl.SSLContext`` to use, built once per process."""
        if self._context is None:
            self.cacheContext()
        assert self._context is not None
        return self._context

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state.pop("_context", None)
        return state


class DefaultOpenSSLContextFactory(_ContextFactory):
    """A server context from a PEM private key file and a PEM certificate file.

    The certificate file may also hold the intermediate certificates after
    the server's own (the usual ``fullchain.pem``); both names may be the
    same file holding key and certificate. ``sslmethod`` is one of
    :data:`SSL_METHODS` or ``None`` (TLS 1.2 and later).
    """

    isClient = 0

    def __init__(self, privateKeyFileName: str, certificateFileName: str, sslmethod: str | None = None) -> None:
        self.privateKeyFileName = os.fspath(privateKeyFileName)
        self.certificateFileName = os.fspath(certificateFileName)
        self.sslmethod = check_sslmethod(sslmethod)

    def _makeContext(self) -> _ssl.SSLContext:
        ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_SERVER)
        _set_versions(ctx, self.sslmethod)
        _load_pair(ctx, self.certificateFileName, self.privateKeyFileName)
        return ctx

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DefaultOpenSSLContextFactory):
            return NotImplemented
        return (self.privateKeyFileName, self.certificateFileName, self.sslmethod) == (
            other.privateKeyFileName,
            other.certificateFileName,
            other.sslmethod,
        )

    def __hash__(self) -> int:
        return hash((self.privateKeyFileName, self.certificateFileName, self.sslmethod))

    def __repr__(self) -> str:
        return f"DefaultOpenSSLContextFactory({self.privateKeyFileName!r}, {self.certificateFileName!r})"


class ClientContextFactory(_ContextFactory):
    """A client context: verifies the server against ``trustRoot`` by default.

    ``hostname`` is the name the certificate must carry (``connectSSL`` uses
    it for SNI and checking; ``None`` means the host connected to).
    ``trustRoot`` is a PEM file of CA certificates or a directory of them
    (``None``: the system's trust store). ``privateKey``/``certKey`` give a
    client certificate. ``verify=False`` switches checking off, for tests
    against self-signed servers only.
    """

    isClient = 1

    def __init__(
        self,
        hostname: str | None = None,
        trustRoot: str | None = None,
        privateKey: str | None = None,
        certKey: str | None = None,
        verify: bool = True,
        sslmethod: str | None = None,
    ) -> None:
        self.hostname = hostname
        self.trustRoot = os.fspath(trustRoot) if trustRoot is not None else None
        self.privateKey = os.fspath(privateKey) if privateKey is not None else None
        self.certKey = os.fspath(certKey) if certKey is not None else self.privateKey
        self.verify = verify
        self.sslmethod = check_sslmethod(sslmethod)

    def _makeContext(self) -> _ssl.SSLContext:
        ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
        _set_versions(ctx, self.sslmethod)
        if self.verify:
            ctx.check_hostname = True
            ctx.verify_mode = _ssl.CERT_REQUIRED
            if self.trustRoot is None:
                ctx.load_default_certs(_ssl.Purpose.SERVER_AUTH)
            else:
                self._load_trust_root(ctx, self.trustRoot)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = _ssl.CERT_NONE
        if self.privateKey is not None:
            assert self.certKey is not None
            _load_pair(ctx, self.certKey, self.privateKey)
        return ctx

    @staticmethod
    def _load_trust_root(ctx: _ssl.SSLContext, trustRoot: str) -> None:
        if os.path.isdir(trustRoot):
            ctx.load_verify_locations(capath=trustRoot)
            return
        data = _readable(trustRoot, "CA certificates", "trustRoot")
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise TLSContextError(
                f"TLS trust root {trustRoot!r} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            )
        try:
            ctx.load_verify_locations(cafile=trustRoot)
        except _ssl.SSLError as e:
            raise TLSContextError(f"cannot load TLS trust root {trustRoot!r}: {e}") from e

    def __repr__(self) -> str:
        return f"ClientContextFactory(hostname={self.hostname!r}, trustRoot={self.trustRoot!r}, verify={self.verify!r})"


def optionsForClientTLS(
    hostname: str,
    trustRoot: str | None = None,
    privateKey: str | None = None,
    certKey: str | None = None,
) -> ClientContextFactory:
    """A verifying client context factory for a server called ``hostname`` (Twisted's name).

    ``trustRoot`` is a CA file or directory path; ``None`` trusts the system's
    CAs. Unlike Twisted, a client certificate is given by file names.
    """
    if not hostname:
        raise ValueError("optionsForClientTLS needs the server's host name, to check its certificate against")
    return ClientContextFactory(hostname=hostname, trustRoot=trustRoot, privateKey=privateKey, certKey=certKey)
