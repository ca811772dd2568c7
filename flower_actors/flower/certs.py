"""Throwaway TLS material for tests and trials: a CA, a SuperLink certificate, node keys (``cryptography`` only).

    ca = make_ca(folder)                                  # ca.pem, ca.key
    server = make_server_certificate(ca, folder, ["127.0.0.1", "10.77.0.1"])
    key = make_node_key(folder, "node1")                  # node1 (OpenSSH private), node1.pub

The files are what ``flower-superlink --ssl-ca-certfile/--ssl-certfile/--ssl-keyfile``,
``--root-certificates``, ``--auth-supernode-private-key`` and
``flwr supernode register`` read. Never use them for anything real: the
keys are unencrypted and the CA lives for a day.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CertificateAuthority",
    "NodeKey",
    "ServerCertificate",
    "make_ca",
    "make_node_key",
    "make_server_certificate",
]

VALID = datetime.timedelta(days=1)


@dataclass(frozen=True)
class CertificateAuthority:
    certificate: Path
    """PEM certificate: the ``--root-certificates`` of a node, the ``--ssl-ca-certfile`` of a SuperLink."""
    key: Path


@dataclass(frozen=True)
class ServerCertificate:
    certificate: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class NodeKey:
    private_key: Path
    """OpenSSH-format EC (SECP384R1) private key: ``--auth-supernode-private-key``."""
    public_key: Path
    """OpenSSH-format public key: ``flwr supernode register PUBLIC_KEY``."""


def _name(common_name: str):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key, path: Path, openssh: bool = False) -> None:  # type: ignore[no-untyped-def]
    """An unencrypted private key, readable by its owner only (PKCS8 PEM, or OpenSSH for node keys)."""
    from cryptography.hazmat.primitives import serialization

    form = serialization.PrivateFormat.OpenSSH if openssh else serialization.PrivateFormat.PKCS8
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption()))
    path.chmod(0o600)


def make_ca(folder: Path, name: str = "ca") -> CertificateAuthority:
    """A self-signed CA (EC P-256) in ``folder/NAME.pem`` and ``folder/NAME.key``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = _name(f"flower-actors throwaway CA {name}")
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    ca = CertificateAuthority(folder / f"{name}.pem", folder / f"{name}.key")
    ca.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, ca.key)
    return ca


def make_server_certificate(
    ca: CertificateAuthority, folder: Path, hosts: Sequence[str], name: str = "superlink"
) -> ServerCertificate:
    """A certificate signed by ``ca`` for ``hosts`` (IP addresses or DNS names, as subject alternative names)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_cert = x509.load_pem_x509_certificate(ca.certificate.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0] if hosts else name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALID)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    server = ServerCertificate(folder / f"{name}.pem", folder / f"{name}.key", ca.certificate)
    server.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, server.key)
    return server


def make_node_key(folder: Path, name: str = "node") -> NodeKey:
    """An EC (SECP384R1, as Flower's) key pair in OpenSSH format: ``folder/NAME`` and ``folder/NAME.pub``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    node = NodeKey(folder / name, folder / f"{name}.pub")
    _write_key(key, node.private_key, openssh=True)
    node.public_key.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    return node
