"""Certificates and keys for the local control plane, made with the openssl CLI.

The API server gets a serving certificate for 127.0.0.1/localhost (and any extra
addresses it listens on, such as the real node's bridge) signed by a throw-away CA
(so clients verify TLS for real), a client certificate for calling kubelets, and
a key pair for signing and verifying ServiceAccount tokens. Admin access uses a
static token in `system:masters`, written into the kubeconfig; the real node's
kubelet has its own static token as `system:node:<name>` (the Node authorizer's
identity).
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

NODE_NAME = "real-node-0"


@dataclass(frozen=True)
class ControlPlanePki:
    """Paths of everything the control plane's TLS and token auth need."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path
    service_account_pub: Path
    token_file: Path
    admin_token: str
    kubelet_client_cert: Path
    kubelet_client_key: Path
    node_token: str


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, text=True)


def _signed_cert(directory: Path, ca_cert: Path, ca_key: Path, name: str, subject: str, ext: str) -> Path:
    """A key and a certificate `<name>.crt` for `subject`, signed by the CA with extensions `ext`."""
    key, csr, cert, extensions = (directory / f"{name}.{suffix}" for suffix in ("key", "csr", "crt", "ext"))
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key), "-out", str(csr))
    extensions.write_text(ext)
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_cert),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        str(extensions),
        "-out",
        str(cert),
    )
    key.chmod(0o600)
    return cert


def create_pki(directory: Path, extra_ips: Sequence[str] = ()) -> ControlPlanePki:
    """Writes a CA, the API server's serving and kubelet-client certs, SA signing keys and the token file."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    sa_key, sa_pub = directory / "sa.key", directory / "sa.pub"
    token_file = directory / "tokens.csv"

    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=autolabel-test-ca",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_cert),
    )
    ips = "".join(f",IP:{ip}" for ip in extra_ips)
    serving_cert = _signed_cert(
        directory,
        ca_cert,
        ca_key,
        "apiserver",
        "/CN=kube-apiserver",
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        f"DNS:kubernetes.default.svc,IP:10.0.0.1{ips}\n",
    )
    kubelet_client_cert = _signed_cert(
        directory,
        ca_cert,
        ca_key,
        "apiserver-kubelet-client",
        "/O=system:masters/CN=kube-apiserver-kubelet-client",
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    )
    _openssl("genrsa", "-out", str(sa_key), "2048")
    _openssl("rsa", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))

    admin_token, node_token = secrets.token_hex(24), secrets.token_hex(24)
    token_file.write_text(
        f'{admin_token},admin,admin-uid,"system:masters"\n'
        f'{node_token},system:node:{NODE_NAME},node-uid,"system:nodes"\n'
    )
    for path in (ca_key, sa_key, token_file):
        path.chmod(0o600)
    return ControlPlanePki(
        ca_cert,
        ca_key,
        serving_cert,
        directory / "apiserver.key",
        sa_key,
        sa_pub,
        token_file,
        admin_token,
        kubelet_client_cert,
        directory / "apiserver-kubelet-client.key",
        node_token,
    )
