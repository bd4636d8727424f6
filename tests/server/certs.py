"""Certificates for the TLS tests, made with the ``openssl`` command in a temporary
directory: a CA, a server certificate for ``localhost`` and ``127.0.0.1`` signed by it
(also with its key encrypted), and a client certificate signed by it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

#: The password of ``server.enc.key``.
KEY_PASSWORD = "s3cret"


@dataclass(frozen=True)
class Certs:
    """Paths of the PEM files ``make_certs`` wrote."""

    ca: str
    cert: str
    key: str
    encrypted_key: str
    client_cert: str
    client_key: str


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _signed(name: str, ext: str, cwd: Path) -> None:
    (cwd / f"{name}.ext").write_text(ext)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=cwd)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
             cwd=cwd)


def make_certs(directory: Path) -> Certs:
    """Write the CA, server and client files into *directory*."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=onehop test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _signed("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                      "extendedKeyUsage=serverAuth\n", directory)
    _signed("client", "extendedKeyUsage=clientAuth\n", directory)
    _openssl("pkey", "-in", "server.key", "-aes256", "-passout", f"pass:{KEY_PASSWORD}",
             "-out", "server.enc.key", cwd=directory)
    d = str(directory)
    return Certs(ca=f"{d}/ca.pem", cert=f"{d}/server.pem", key=f"{d}/server.key",
                 encrypted_key=f"{d}/server.enc.key", client_cert=f"{d}/client.pem",
                 client_key=f"{d}/client.key")
