"""Shared helpers for the hand-run benchmarks in bench/ (never collected by pytest).

Each benchmark builds a throw-away instance folder through the real CLI (`flask --app app …`)
so that it measures the code as deployed, and exports the CA material in the plain forms that
`openssl ocsp` / `openssl ca` need.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parent.parent          # the repository
BIN = Path(sys.executable).parent                       # .venv/bin
sys.path.insert(0, str(ROOT))


# A password the certificate-password rules accept (no runs like "abc", "321", no repeats).
CERT_PASSWORD = "Zq8#wVx!mR4$kT"


def instance_env(instance: Path) -> dict:
    env = {**os.environ, "CERTCENTER_INSTANCE": str(instance), "FLASK_APP": "app"}
    env.pop("CERTCENTER_CA_PASSPHRASE", None)     # use the instance's generated passphrase
    env.pop("DATABASE_URL", None)                 # and its own SQLite file
    return env


def flask(instance: Path, *args: str) -> str:
    """Run one `flask --app app …` command against the instance; return its stdout."""
    done = subprocess.run([str(BIN / "flask"), "--app", "app", *args], cwd=ROOT,
                          env=instance_env(instance), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


@dataclass
class Instance:
    folder: Path
    issuing_cert: x509.Certificate
    ocsp_cert: x509.Certificate
    passphrase: bytes

    def key(self, part: str):
        """The decrypted private key of `part` (issuing, ocsp; file backend)."""
        return serialization.load_pem_private_key(ca_file(self.folder, f"{part}.key"),
                                                  self.passphrase)

    def write_plain_key(self, part: str, path: Path) -> Path:
        """The key as unencrypted PKCS#8 PEM (mode 0600), for openssl."""
        pem = self.key(part).private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return path


def clean_up(folder: Path, keep: bool) -> None:
    """Remove a run's temporary folder, or with --keep say where it is."""
    if keep:
        print(f"kept {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


def ca_file(instance: Path, name: str) -> bytes:
    """What the CA keeps under `name` (services.ca_store), from the instance's SQLite file."""
    with contextlib.closing(sqlite3.connect(instance / "certcenter.db")) as database:
        (data,) = database.execute("SELECT data FROM ca_file WHERE name = ?", (name,)).fetchone()
    return data


def make_instance(folder: Path) -> Instance:
    """`ca init` in a fresh instance folder."""
    flask(folder, "ca", "init", "--root-out", str(folder / "root-ca"), "--new-root-passphrase")
    # app.load_config: without CERTCENTER_CA_PASSPHRASE the passphrase is the hex text of
    # the generated instance file `ca-passphrase`.
    passphrase = (folder / "ca-passphrase").read_bytes().hex().encode()
    return Instance(folder,
                    x509.load_pem_x509_certificate(ca_file(folder, "issuing.crt")),
                    x509.load_pem_x509_certificate(ca_file(folder, "ocsp.crt")),
                    passphrase)


def issue(instance: Instance, out: Path) -> x509.Certificate:
    """Issue the demo customer a personal-banking certificate (replacing, i.e. revoking as
    superseded, the one issued before) and return it."""
    password_file = out.with_suffix(".password")
    password_file.write_text(CERT_PASSWORD + "\n")
    flask(instance.folder, "certs", "issue", "--customer", "P0000001", "--type",
          "personal-banking", "--rrn", "9001011234567", "--password-file", str(password_file),
          "--out", str(out))
    (der,) = out.glob("NPKI/*/USER/*/signCert.der")
    return x509.load_der_x509_certificate(der.read_bytes())


def openssl_subject(name: x509.Name) -> str:
    """A Name in openssl's index.txt form: /C=KR/O=…/CN=… (most significant first)."""
    return "".join("/" + rdn.rfc4514_string() for rdn in name.rdns)


def openssl_serial(serial: int) -> str:
    text = format(serial, "X")
    return text if len(text) % 2 == 0 else "0" + text


def openssl_time(moment) -> str:
    return moment.strftime("%y%m%d%H%M%SZ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
