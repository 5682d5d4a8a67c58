"""The CA's certificates and encrypted keys in the instance folder: created once by
`ca init`, loaded once per process. Signing itself happens in pki/."""
import os
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from cryptography import x509

from pki import ca as pki_ca
from pki import files as pki_files
from pki.profile import urls_for
from services import clock, settings
from services.errors import DomainError

PARTS = ("root", "issuing", "ocsp")


def _folder() -> Path:
    return settings.current().instance / "ca"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def exists() -> bool:
    return all((_folder() / f"{part}.crt").exists() for part in PARTS)


@dataclass
class InitResult:
    created: bool
    fingerprints: dict


def init_ca() -> InitResult:
    """Create root, issuing CA and OCSP signer unless they exist. Idempotent."""
    created = False
    if not exists():
        config = settings.current()
        folder = _folder()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        now = clock.aware(clock.now())
        root_cert, root_key = pki_ca.create_root(config.ca_org, now)
        issuing_cert, issuing_key = pki_ca.create_issuing(config.ca_org, root_cert, root_key,
                                                          config.policy_arc, now)
        ocsp_cert, ocsp_key = pki_ca.create_ocsp_signer(config.ca_org, issuing_cert,
                                                        issuing_key, now)
        for part, cert, key in (("root", root_cert, root_key),
                                ("issuing", issuing_cert, issuing_key),
                                ("ocsp", ocsp_cert, ocsp_key)):
            _write_private(folder / f"{part}.key",
                           pki_ca.encrypt_key_pem(key, config.ca_passphrase))
            (folder / f"{part}.crt").write_bytes(pki_files.cert_pem(cert))
        created = True
        forget_ca()
    keys = load_ca()
    return InitResult(created, {"root": pki_ca.fingerprint(keys.root_cert),
                                "issuing": pki_ca.fingerprint(keys.issuing_cert),
                                "ocsp": pki_ca.fingerprint(keys.ocsp_cert)})


def load_ca() -> pki_ca.CaKeys:
    """The CA, loaded once per process and again when the OCSP signer file changes (it is
    re-issued while other worker processes run)."""
    try:
        stamp = (_folder() / "ocsp.crt").stat().st_mtime_ns
    except FileNotFoundError:
        stamp = None
    return _load(str(_folder()), stamp)


def forget_ca() -> None:
    """Drop the loaded CA, so the next use reads the files again."""
    _load.cache_clear()


@lru_cache(maxsize=1)
def _load(_folder_name: str, _stamp) -> pki_ca.CaKeys:
    if not exists():
        raise DomainError("ca_missing", status=503)
    folder, passphrase = _folder(), settings.current().ca_passphrase
    loaded = {}
    for part in PARTS:
        loaded[f"{part}_cert"] = x509.load_pem_x509_certificate(
            (folder / f"{part}.crt").read_bytes())
        loaded[f"{part}_key"] = pki_ca.load_key_pem((folder / f"{part}.key").read_bytes(),
                                                    passphrase)
    return pki_ca.CaKeys(**loaded)


OCSP_SIGNER_DAYS = 30
OCSP_RENEW_BEFORE = timedelta(days=7)


def ocsp_signer_due(at=None) -> bool:
    """Whether the OCSP signer is due to be re-issued at `at` (default now)."""
    return (load_ca().ocsp_cert.not_valid_after_utc - clock.aware(at or clock.now())
            < OCSP_RENEW_BEFORE)


def rotate_ocsp_signer(actor: str) -> str:
    """Issue a new delegated OCSP signer; returns its fingerprint."""
    from services import audit
    config, keys = settings.current(), load_ca()
    cert, key = pki_ca.create_ocsp_signer(config.ca_org, keys.issuing_cert, keys.issuing_key,
                                          clock.aware(clock.now()), days=OCSP_SIGNER_DAYS)
    folder = _folder()
    # Key first, then certificate: readers key their cache on the certificate file.
    _write_private(folder / "ocsp.key.new", pki_ca.encrypt_key_pem(key, config.ca_passphrase))
    (folder / "ocsp.crt.new").write_bytes(pki_files.cert_pem(cert))
    os.replace(folder / "ocsp.key.new", folder / "ocsp.key")
    os.replace(folder / "ocsp.crt.new", folder / "ocsp.crt")
    forget_ca()
    audit.record(actor, "ocsp_signer.rotate", pki_ca.fingerprint(cert))
    return pki_ca.fingerprint(cert)


def chain() -> list[x509.Certificate]:
    """The chain a relying party needs above an end entity: issuing CA, then root."""
    keys = load_ca()
    return [keys.issuing_cert, keys.root_cert]


def urls():
    return urls_for(settings.current().base_url)
