"""Certificates and keys for the local control plane, made with the openssl CLI.

The API server gets a serving certificate for 127.0.0.1/localhost signed by a
throw-away CA (so clients verify TLS for real), and a key pair for signing
and verifying ServiceAccount tokens. Admin access uses a static token in
`system:masters`, written into the kubeconfig.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path


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


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, text=True)


def create_pki(directory: Path) -> ControlPlanePki:
    """Writes a CA, an API-server serving cert, SA signing keys and the admin token file."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    serving_key, serving_csr = directory / "apiserver.key", directory / "apiserver.csr"
    serving_cert, extensions = directory / "apiserver.crt", directory / "apiserver.ext"
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
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=kube-apiserver",
        "-keyout",
        str(serving_key),
        "-out",
        str(serving_csr),
    )
    extensions.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,IP:10.0.0.1\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(serving_csr),
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
        str(serving_cert),
    )
    _openssl("genrsa", "-out", str(sa_key), "2048")
    _openssl("rsa", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))

    admin_token = secrets.token_hex(24)
    token_file.write_text(f'{admin_token},admin,admin-uid,"system:masters"\n')
    for path in (ca_key, serving_key, sa_key, token_file):
        path.chmod(0o600)
    return ControlPlanePki(
        ca_cert, ca_key, serving_cert, serving_key, sa_key, sa_pub, token_file, admin_token
    )
