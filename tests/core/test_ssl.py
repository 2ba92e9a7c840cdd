"""tapster.core.ssl: picklable TLS context factories, their errors, and real TLS on 127.0.0.1."""

from __future__ import annotations

import os
import pickle
import ssl
from pathlib import Path

import pytest

from tapster.core import ssl as tssl
from tapster.core.errors import TapsterError
from tapster.core.protocol import Factory, Protocol
from tests.core._clients import CollectingFactory, Collector  # noqa: F401


def test_public_names_are_exported():
    assert set(tssl.__all__) == {
        "TLSContextError",
        "DefaultOpenSSLContextFactory",
        "ClientContextFactory",
        "optionsForClientTLS",
        "SSL_METHODS",
    }
    for name in tssl.__all__:
        assert hasattr(tssl, name)
    assert issubclass(tssl.TLSContextError, TapsterError)


# -- server contexts ---------------------------------------------------------------


def test_server_context_is_built_once_and_refuses_old_tls(tmp_path, self_signed):
    key, cert = self_signed(tmp_path)
    cf = tssl.DefaultOpenSSLContextFactory(key, cert)
    ctx = cf.getContext()
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert cf.getContext() is ctx


def test_server_context_is_not_built_before_it_is_needed(tmp_path):
    cf = tssl.DefaultOpenSSLContextFactory(str(tmp_path / "absent.key"), str(tmp_path / "absent.crt"))
    assert cf.privateKeyFileName.endswith("absent.key")
    assert cf.certificateFileName.endswith("absent.crt")


def test_pickling_drops_the_cached_context(tmp_path, self_signed):
    key, cert = self_signed(tmp_path)
    cf = tssl.DefaultOpenSSLContextFactory(key, cert, sslmethod="TLSv1_2_METHOD")
    cf.getContext()
    copy = pickle.loads(pickle.dumps(cf))
    assert copy == cf
    assert "_context" not in copy.__dict__
    assert copy.sslmethod == "TLSv1_2_METHOD"
    assert copy.getContext().maximum_version == ssl.TLSVersion.TLSv1_2


def test_one_file_may_hold_key_and_certificate(tmp_path, self_signed):
    key, cert = self_signed(tmp_path)
    both = tmp_path / "both.pem"
    both.write_bytes(Path(key).read_bytes() + Path(cert).read_bytes())
    assert isinstance(tssl.DefaultOpenSSLContextFactory(str(both), str(both)).getContext(), ssl.SSLContext)


def test_tls13_method_pins_the_version(tmp_path, self_signed):
    key, cert = self_signed(tmp_path)
    ctx = tssl.DefaultOpenSSLContextFactory(key, cert, sslmethod="TLSv1_3_METHOD").getContext()
    assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_3


@pytest.mark.parametrize("method, words", [("TLSv1_METHOD", "insecure"), ("TLSv9_METHOD", "unknown sslmethod")])
def test_bad_sslmethod_is_refused_with_the_choices(method, words):
    with pytest.raises(ValueError) as info:
        tssl.DefaultOpenSSLContextFactory("k", "c", sslmethod=method)
    assert words in str(info.value)
    assert "TLSv1_2_METHOD" in str(info.value)


def test_missing_private_key_names_the_file(tmp_path, self_signed):
    _, cert = self_signed(tmp_path)
    missing = str(tmp_path / "nope.key")
    with pytest.raises(tssl.TLSContextError) as info:
        tssl.DefaultOpenSSLContextFactory(missing, cert).getContext()
    message = str(info.value)
    assert repr(missing) in message and "private key" in message and "privateKey=" in message
    assert "No such file" in message


def test_missing_certificate_names_the_file(tmp_path, self_signed):
    key, _ = self_signed(tmp_path)
    missing = str(tmp_path / "nope.crt")
    with pytest.raises(tssl.TLSContextError) as info:
        tssl.DefaultOpenSSLContextFactory(key, missing).getContext()
    assert repr(missing) in str(info.value) and "certKey=" in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_key_names_the_file_and_permissions(tmp_path, self_signed):
    key, cert = self_signed(tmp_path)
    os.chmod(key, 0)
    try:
        with pytest.raises(tssl.TLSContextError) as info:
            tssl.DefaultOpenSSLContextFactory(key, cert).getContext()
    finally:
        os.chmod(key, 0o600)
    assert repr(key) in str(info.value) and "Permission denied" in str(info.value)


def test_file_that_is_not_pem_is_reported(tmp_path, self_signed):
    key, _ = self_signed(tmp_path)
    junk = tmp_path / "junk.crt"
    junk.write_text("hello\n")
    with pytest.raises(tssl.TLSContextError) as info:
        tssl.DefaultOpenSSLContextFactory(key, str(junk)).getContext()
    assert repr(str(junk)) in str(info.value) and "no PEM certificate" in str(info.value)


def test_certificate_of_another_key_is_reported(tmp_path, self_signed):
    key, _ = self_signed(tmp_path, "one")
    _, other_cert = self_signed(tmp_path, "two")
    with pytest.raises(tssl.TLSContextError) as info:
        tssl.DefaultOpenSSLContextFactory(key, other_cert).getContext()
    assert "does not belong" in str(info.value)
    assert repr(key) in str(info.value) and repr(other_cert) in str(info.value)


def test_encrypted_key_is_reported_without_prompting(tmp_path, self_signed):
    key, cert = self_signed(tmp_path, passphrase=b"secret")
    with pytest.raises(tssl.TLSContextError) as info:
        tssl.DefaultOpenSSLContextFactory(key, cert).getContext()
    assert "is encrypted" in str(info.value) and repr(key) in str(info.value)


# -- client contexts ---------------------------------------------------------------


def test_client_context_verifies_by_default():
    ctx = tssl.ClientContextFactory().getContext()
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_client_context_without_verification_is_explicit():
    ctx = tssl.ClientContextFactory(verify=False).getContext()
    assert ctx.verify_mode == ssl.CERT_NONE
    assert ctx.check_hostname is False


def test_client_trust_root_is_loaded(tmp_path, self_signed):
    _, cert = self_signed(tmp_path)
    ctx = tssl.optionsForClientTLS("localhost", trustRoot=cert).getContext()
    assert ctx.cert_store_stats()["x509"] == 1


def test_client_trust_root_may_be_a_directory(tmp_path):
    ctx = tssl.ClientContextFactory(trustRoot=str(tmp_path)).getContext()
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_missing_trust_root_names_the_file(tmp_path):
    missing = str(tmp_path / "ca.pem")
    with pytest.raises(tssl.TLSContextError) as info:
        tssl.optionsForClientTLS("localhost", trustRoot=missing).getContext()
    assert repr(missing) in str(info.value) and "trustRoot=" in str(info.value)


def test_options_for_client_tls_needs_a_hostname():
    with pytest.raises(ValueError, match="host name"):
        tssl.optionsForClientTLS("")


def test_client_factory_pickles_without_its_context(tmp_path, self_signed):
    key, cert = self_signed(tmp_path)
    cf = tssl.optionsForClientTLS("localhost", trustRoot=cert, privateKey=key, certKey=cert)
    cf.getContext()
    copy = pickle.loads(pickle.dumps(cf))
    assert "_context" not in copy.__dict__
    assert (copy.hostname, copy.trustRoot, copy.privateKey, copy.certKey) == ("localhost", cert, key, cert)
    assert isinstance(copy.getContext(), ssl.SSLContext)


# -- real TLS over the shared reactor ------------------------------------------------


class Greeter(Protocol):
    def connectionMade(self):
        self.transport.write(b"hello over tls\r\n")
        self.transport.loseConnection()


def test_verified_client_talks_to_server(tmp_path, self_signed, shared_reactor, run_until):
    key, cert = self_signed(tmp_path)
    port = shared_reactor.listenSSL(0, Factory.forProtocol(Greeter), tssl.DefaultOpenSSLContextFactory(key, cert),
                                    interface="127.0.0.1")
    client = CollectingFactory()
    shared_reactor.connectSSL("127.0.0.1", port.getHost().port, client,
                              tssl.optionsForClientTLS("localhost", trustRoot=cert))
    try:
        assert run_until(shared_reactor, lambda: client.done)
    finally:
        port.stopListening()
    assert client.failure is None
    assert client.received == b"hello over tls\r\n"


def test_client_refuses_a_server_it_does_not_trust(tmp_path, self_signed, shared_reactor, run_until):
    key, cert = self_signed(tmp_path, "server")
    _, stranger = self_signed(tmp_path, "stranger")
    port = shared_reactor.listenSSL(0, Factory.forProtocol(Greeter), tssl.DefaultOpenSSLContextFactory(key, cert),
                                    interface="127.0.0.1")
    client = CollectingFactory()
    shared_reactor.connectSSL("127.0.0.1", port.getHost().port, client,
                              tssl.optionsForClientTLS("localhost", trustRoot=stranger))
    try:
        assert run_until(shared_reactor, lambda: client.done)
    finally:
        port.stopListening()
    assert client.received == b""
    assert client.failure is not None
    assert "CERTIFICATE_VERIFY_FAILED" in str(client.failure.value)
