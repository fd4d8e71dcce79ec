"""The cluster's credentials: a CA, a server certificate, an admin token, and the kubeconfig.

Created on first start and reused afterwards, like k3s does, so `kubectl` works with the
written kubeconfig as is. Keys, the token and the kubeconfig are readable by the owner only.
The server certificate is re-issued (same CA) when it does not cover an address the server is
asked to listen on, so existing kubeconfigs stay valid.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass

import orjson

# cryptography is imported only when a certificate must be made: a restart with valid
# credentials then costs no time or memory for it.

_VALID_DAYS = 3650
_SANS_FILE = "server.sans"


@dataclass
class Credentials:
    data_dir: str
    ca_cert: str
    server_cert: str
    server_key: str
    token: str

    @property
    def ca_pem(self) -> bytes:
        with open(self.ca_cert, "rb") as f:
            return f.read()


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _new_ca(data_dir: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"pocketkube-ca@{int(now.timestamp())}")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write_private(os.path.join(data_dir, "ca.key"), _key_pem(key))
    with open(os.path.join(data_dir, "ca.crt"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def default_sans(bind: str, extra: list[str] | None = None) -> list[str]:
    names = ["localhost", "127.0.0.1", "::1", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    host = socket.gethostname()
    names.append(host)
    try:
        for addr in socket.gethostbyname_ex(host)[2]:
            names.append(addr)
    except OSError:
        pass
    if bind not in ("0.0.0.0", "::", ""):
        names.append(bind)
    names.extend(extra or [])
    out: list[str] = []
    for n in names:
        if n and n not in out:
            out.append(n)
    return out


def _san_entries(names: list[str]) -> list:
    from cryptography import x509

    out: list = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def _cert_covers(data_dir: str, names: list[str]) -> bool:
    """Whether the issued server certificate names all of `names` (read from its sidecar list)."""
    try:
        with open(os.path.join(data_dir, _SANS_FILE), "rb") as f:
            have = set(orjson.loads(f.read()))
    except (OSError, ValueError):
        return False
    return all(_canonical(n) in have for n in names)


def _canonical(name: str) -> str:
    return str(ipaddress.ip_address(name)) if _is_ip(name) else name


def _is_ip(n: str) -> bool:
    try:
        ipaddress.ip_address(n)
        return True
    except ValueError:
        return False


def _issue_server_cert(data_dir: str, ca, ca_key, names: list[str]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(_san_entries(names)), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    _write_private(os.path.join(data_dir, "server.key"), _key_pem(key))
    with open(os.path.join(data_dir, "server.crt"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(data_dir, _SANS_FILE), "wb") as f:
        f.write(orjson.dumps([_canonical(n) for n in names]))


def private_dir(data_dir: str) -> None:
    """The data directory, made or kept readable by its owner only."""
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    os.chmod(data_dir, 0o700)


def _have(data_dir: str, *names: str) -> bool:
    return all(os.path.exists(os.path.join(data_dir, n)) for n in names)


def _ca_ready(data_dir: str) -> bool:
    return _have(data_dir, "ca.crt", "ca.key")


def _server_cert_ready(data_dir: str, sans: list[str]) -> bool:
    return _have(data_dir, "server.crt", "server.key") and _cert_covers(data_dir, sans)


def certificates_ready(data_dir: str, sans: list[str]) -> bool:
    """Whether ensure_credentials would find every certificate it needs (and import nothing)."""
    return _ca_ready(data_dir) and _server_cert_ready(data_dir, sans)


def ensure_credentials(data_dir: str, sans: list[str]) -> Credentials:
    """Create (first start) or load the CA, server certificate and admin token."""
    private_dir(data_dir)
    ca_crt, ca_key_path = os.path.join(data_dir, "ca.crt"), os.path.join(data_dir, "ca.key")
    srv_crt, srv_key = os.path.join(data_dir, "server.crt"), os.path.join(data_dir, "server.key")
    token_path = os.path.join(data_dir, "token")
    ca = ca_key = None
    if not _ca_ready(data_dir):
        ca, ca_key = _new_ca(data_dir)
    if not _server_cert_ready(data_dir, sans):
        if ca is None:
            from cryptography import x509
            from cryptography.hazmat.primitives import serialization

            with open(ca_crt, "rb") as f:
                ca = x509.load_pem_x509_certificate(f.read())
            with open(ca_key_path, "rb") as f:
                ca_key = serialization.load_pem_private_key(f.read(), password=None)
        _issue_server_cert(data_dir, ca, ca_key, sans)  # type: ignore[arg-type]
    if not os.path.exists(token_path):
        _write_private(token_path, secrets.token_urlsafe(32).encode())
    with open(token_path) as f:
        token = f.read().strip()
    return Credentials(data_dir, ca_crt, srv_crt, srv_key, token)


def client_host(bind: str) -> str:
    """The address clients on this machine should use to reach a server bound to `bind`."""
    if bind in ("0.0.0.0", ""):
        return "127.0.0.1"
    if bind == "::":
        return "[::1]"
    return f"[{bind}]" if ":" in bind else bind


def write_kubeconfig(creds: Credentials, server_url: str, path: str | None = None) -> str:
    import base64

    import yaml

    path = path or os.path.join(creds.data_dir, "kubeconfig")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "pocketkube", "cluster": {
            "server": server_url,
            "certificate-authority-data": base64.b64encode(creds.ca_pem).decode()}}],
        "users": [{"name": "admin", "user": {"token": creds.token}}],
        "contexts": [{"name": "pocketkube", "context": {"cluster": "pocketkube", "user": "admin",
                                                        "namespace": "default"}}],
        "current-context": "pocketkube",
        "preferences": {},
    }
    _write_private(path, yaml.safe_dump(config, sort_keys=False).encode())
    return path


if __name__ == "__main__":
    # `python -m pocketkube.server.credentials DATA_DIR NAME...`: the server makes its
    # certificates in this child process (see ControlPlane.start).
    import sys

    ensure_credentials(sys.argv[1], sys.argv[2:])
