"""The online CA in the instance folder's `ca/`: the CA certificates, the issuing CA's and OCSP
signer's keys (encrypted PKCS#8 files, or references to keys in a PKCS#11 token), and what the
offline root signed at its last ceremony (its CRL and pre-signed OCSP answers). Loaded once per
process. The root's key is never here: services.ceremony reads it from where the operator keeps it.

    root.crt  issuing.crt  ocsp.crt            the chain and the OCSP responder certificate
    issuing.key  ocsp.key                      file backend: PKCS#8 under the CA passphrase
    issuing.p11  ocsp.p11                      PKCS#11 backend: the key's CKA_ID, in hex
    root.crl                                   the root's CRL (ARL), DER
    root-issued/<serial>.crt                   every certificate the root signed
    root-ocsp/<serial>-<sha1|sha256>.der       the root's pre-signed OCSP answer for each
"""
import atexit
import functools
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from models import SigningTally, db
from pki import ca as pki_ca
from pki import files as pki_files
from pki import ocsp as pki_ocsp
from pki import signer as pki_signer
from pki.profile import urls_for
from services import clock, settings
from services.errors import DomainError

ONLINE_KEYS = ("issuing", "ocsp")


def folder() -> Path:
    return settings.current().instance / "ca"


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, replacing any file there in one step."""
    partial = path.with_name(path.name + ".new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)


def write_public(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".new")
    partial.write_bytes(data)
    os.replace(partial, path)


def exists() -> bool:
    return all((folder() / f"{part}.crt").exists() for part in ("root", *ONLINE_KEYS))


def backend() -> str:
    return "pkcs11" if settings.current().pkcs11 else "file"


@functools.cache
def _token(module: str, label: str, pin: str) -> pki_signer.Pkcs11Token:
    # One per process: PKCS#11 logs a whole process in, and sessions are kept open.
    return pki_signer.Pkcs11Token(module, label, pin)


def token() -> pki_signer.Pkcs11Token:
    config = settings.current().pkcs11
    return _token(config["module"], config["token"], config["pin"])


def new_key(role: str) -> pki_signer.Signer:
    """A new key for an online role ("issuing" or "ocsp"), where the configured backend keeps
    keys; not yet stored (store_key)."""
    if backend() == "pkcs11":
        return token().generate(f"certcenter-{role}")
    return pki_signer.FileSigner.generate()


def store_key(role: str, signer: pki_signer.Signer) -> None:
    """Record where `signer` is: its encrypted file, or its CKA_ID in the token."""
    if isinstance(signer, pki_signer.Pkcs11Signer):
        write_public(folder() / f"{role}.p11", signer.cka_id.hex().encode() + b"\n")
        (folder() / f"{role}.key").unlink(missing_ok=True)
    else:
        write_private(folder() / f"{role}.key", signer.encrypted_pem(settings.current().ca_passphrase))
        (folder() / f"{role}.p11").unlink(missing_ok=True)


def _load_key(role: str) -> pki_signer.Signer:
    reference = folder() / f"{role}.p11"
    if reference.exists():
        if backend() != "pkcs11":
            raise DomainError("ca_token_unconfigured", status=503)
        return token().find(bytes.fromhex(reference.read_text().strip()))
    return pki_signer.FileSigner.load((folder() / f"{role}.key").read_bytes(),
                                      settings.current().ca_passphrase)


def store_certificate(role: str, cert: x509.Certificate) -> None:
    """Write a CA certificate. Readers key their cache on ocsp.crt: write it after its key."""
    write_public(folder() / f"{role}.crt", pki_files.cert_pem(cert))


def load_ca() -> pki_ca.CaKeys:
    """The online CA, loaded once per process and again when the OCSP signer or the issuing
    CA certificate changes (they are re-issued while other worker processes run)."""
    folder_name, paths = _stamped(settings.current().instance)
    stamps = []
    for path in paths:
        try:
            stamps.append(os.stat(path).st_mtime_ns)
        except FileNotFoundError:
            stamps.append(None)
    return _load(folder_name, tuple(stamps))


@functools.lru_cache(maxsize=4)
def _stamped(instance: Path) -> tuple[str, tuple[str, ...]]:
    # Every OCSP request asks load_ca: building the paths cost more than the two stats.
    ca = instance / "ca"
    return str(ca), tuple(str(ca / f"{part}.crt") for part in ONLINE_KEYS)


def forget_ca() -> None:
    """Drop the loaded CA, so the next use reads the files again."""
    _load.cache_clear()
    _root_answers.cache_clear()


@functools.lru_cache(maxsize=1)
def _load(_folder_name: str, _stamps) -> pki_ca.CaKeys:
    if not exists():
        raise DomainError("ca_missing", status=503)
    certs = {part: x509.load_pem_x509_certificate((folder() / f"{part}.crt").read_bytes())
             for part in ("root", *ONLINE_KEYS)}
    return pki_ca.CaKeys(root_cert=certs["root"], issuing_cert=certs["issuing"],
                         issuing_key=_load_key("issuing"), ocsp_cert=certs["ocsp"],
                         ocsp_key=_load_key("ocsp"))


OCSP_SIGNER_DAYS = 30
OCSP_RENEW_BEFORE = timedelta(days=7)


def ocsp_signer_due(at=None) -> bool:
    """Whether the OCSP signer is due to be re-issued at `at` (default now)."""
    return (load_ca().ocsp_cert.not_valid_after_utc - clock.aware(at or clock.now())
            < OCSP_RENEW_BEFORE)


def issue_ocsp_signer(issuing_cert: x509.Certificate, issuing_key) -> x509.Certificate:
    """A new delegated OCSP signer with a new key, signed by the issuing CA and stored."""
    config = settings.current()
    signer = new_key("ocsp")
    cert, _ = pki_ca.create_ocsp_signer(config.ca_org, issuing_cert, issuing_key,
                                        clock.aware(clock.now()), days=OCSP_SIGNER_DAYS,
                                        public_key=signer.public_key())
    store_key("ocsp", signer)
    store_certificate("ocsp", cert)
    forget_ca()
    return cert


def ocsp_signer_id() -> str:
    """SHA-256 of the current OCSP signer certificate, in hex: stored answers name it. Asked
    on every OCSP request, so it looks at ocsp.crt's time alone, as load_ca does."""
    path = _stamped(settings.current().instance)[1][ONLINE_KEYS.index("ocsp")]
    try:
        stamp = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        load_ca()                    # says that the CA is missing
        raise
    return _signer_id(path, stamp)


@functools.lru_cache(maxsize=4)
def _signer_id(path: str, _stamp) -> str:
    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex()


def rotate_ocsp_signer(actor: str) -> str:
    """Issue a new delegated OCSP signer; returns its fingerprint."""
    from services import audit
    keys = load_ca()
    cert = issue_ocsp_signer(keys.issuing_cert, keys.issuing_key)
    audit.record(actor, "ocsp_signer.rotate", pki_ca.fingerprint(cert))
    return pki_ca.fingerprint(cert)


@dataclass(frozen=True)
class RootCrl:
    der: bytes
    number: int
    this_update: object      # naive UTC, as the database keeps times
    next_update: object


def root_crl() -> RootCrl | None:
    """The root's latest CRL, as its last ceremony left it."""
    try:
        der = (folder() / "root.crl").read_bytes()
    except FileNotFoundError:
        return None
    crl = x509.load_der_x509_crl(der)
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    return RootCrl(der, number, clock.naive(crl.last_update_utc), clock.naive(crl.next_update_utc))


def root_issued() -> list[x509.Certificate]:
    """Every certificate the root signed (the issuing CA certificates, old and current)."""
    found = sorted((folder() / "root-issued").glob("*.crt"))
    return [x509.load_pem_x509_certificate(path.read_bytes()) for path in found]


def root_answer(serial: int, algorithm: str) -> tuple | None:
    """The root's pre-signed OCSP answer about one of its certificates: (DER, thisUpdate,
    nextUpdate), times naive UTC."""
    try:
        stamp = (folder() / "root.crl").stat().st_mtime_ns   # a ceremony writes it last
    except FileNotFoundError:
        return None
    return _root_answers(str(folder()), stamp).get(f"{serial:x}-{algorithm}")


@functools.lru_cache(maxsize=1)
def _root_answers(_folder_name: str, _stamp) -> dict[str, tuple]:
    found = {}
    for path in (folder() / "root-ocsp").glob("*.der"):
        der = path.read_bytes()
        this_update, next_update = pki_ocsp.answer_times(der)
        found[path.stem] = (der, clock.naive(this_update), clock.naive(next_update))
    return found


_tally_lock = threading.Lock()
_tally: Counter = Counter()
_tally_written = [0.0]


def count_signature(kind: str) -> None:
    """Count one signature of an online key. OCSP signs per request, so counts are kept in
    memory and written at most once a second (and when the process ends)."""
    with _tally_lock:
        _tally[kind] += 1
        if time.monotonic() - _tally_written[0] < 1.0:
            return
    write_signature_counts()


def write_signature_counts() -> None:
    with _tally_lock:
        pending = dict(_tally)
        _tally.clear()
        _tally_written[0] = time.monotonic()
    if not pending:
        return
    opened = db.connect(reuse_if_open=True)
    try:
        for kind, n in pending.items():
            (SigningTally.insert(kind=kind, count=n)
             .on_conflict(conflict_target=[SigningTally.kind],
                          update={SigningTally.count: SigningTally.count + n}).execute())
    finally:
        if opened:
            db.close()


atexit.register(write_signature_counts)


def signature_counts() -> dict[str, int]:
    write_signature_counts()
    return {row.kind: row.count for row in SigningTally.select()}


def chain() -> list[x509.Certificate]:
    """The chain a relying party needs above an end entity: issuing CA, then root."""
    keys = load_ca()
    return [keys.issuing_cert, keys.root_cert]


def urls(crl_partition: int | None = None):
    """The URLs certificates name; with `crl_partition`, that partition's CRL."""
    return urls_for(settings.current().base_url, crl_partition)
