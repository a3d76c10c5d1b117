"""A throw-away certificate authority and a server certificate for loopback tests.

ECDSA P-256 keys: generated in well under a millisecond, so every server instance gets
its own CA and nothing is cached between runs.
"""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Peer tools (mbsync, offlineimap, fetchmail) match names only, so 127.0.0.1 is also
# listed as a DNS name; a strict client connecting to 127.0.0.1 matches the IP entry.
SERVER_DNS_NAMES = ("localhost", "127.0.0.1")
SERVER_IPS = ("127.0.0.1", "::1")


def _name(common_name):
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailferry test harness"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _write(path, data, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class TestPKI:
    """Files written to `directory`: ca.crt, ca.key, server.crt, server.key.

    Attributes: ca_file, cert_file, key_file, fingerprint (SHA-256 of the server
    certificate's DER, lowercase hex without colons)."""

    __test__ = False  # not a pytest class despite the name

    def __init__(self, directory):
        os.makedirs(directory, mode=0o755, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        not_before = now - datetime.timedelta(days=1)
        not_after = now + datetime.timedelta(days=3650)

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("mailferry test CA")
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256())
        )

        key = ec.generate_private_key(ec.SECP256R1())
        san = [x509.DNSName(n) for n in SERVER_DNS_NAMES]
        san += [x509.IPAddress(ipaddress.ip_address(a)) for a in SERVER_IPS]
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("localhost")).issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )

        self.ca_file = os.path.join(directory, "ca.crt")
        self.ca_key_file = os.path.join(directory, "ca.key")
        self.cert_file = os.path.join(directory, "server.crt")
        self.key_file = os.path.join(directory, "server.key")
        _write(self.ca_file, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        _write(self.ca_key_file, _key_pem(ca_key), 0o600)
        _write(self.cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        _write(self.key_file, _key_pem(key), 0o600)
        self.fingerprint = cert.fingerprint(hashes.SHA256()).hex()
