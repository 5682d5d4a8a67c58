"""The online CA, kept in the database so that every host shares it (table ca_file), under the
names its files had in `<instance>/ca/` before: the CA certificates, the issuing CA's and OCSP
signer's keys (encrypted PKCS#8, or references to keys in a PKCS#11 token), and what the
offline root signed at its last ceremony (its CRL and pre-signed OCSP answers). The root's key
is never here: services.ceremony reads it from where the operator keeps it.

    root.crt  issuing.crt  ocsp.crt            the chain and the OCSP responder certificate
    cmp.crt                                    the CMP signer (made on first use for older CAs)
    issuing.key  ocsp.key  cmp.key             file backend: PKCS#8 under the CA passphrase
    issuing.p11  ocsp.p11  cmp.p11             PKCS#11 backend: the key's CKA_ID, in hex
    root.key                                   a root not yet moved offline (`ca move-root-out`)
    root.crl                                   the root's CRL (ARL), DER
    root-issued/<serial>.crt                   every certificate the root signed
    root-ocsp/<serial>-<sha1|sha256>.der       the root's pre-signed OCSP answer for each

Each process keeps what it loaded, and looks at the versions of the rows it loaded at most once
every FRESH_FOR seconds (OCSP asks on every request): what another host changed is in use here
within that time, what this process changed at once.
"""
import atexit
import functools
import logging
import os
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from models import CaFile, SigningTally, db
from models.db import one_at_a_time, wait_turn
from pki import ca as pki_ca
from pki import files as pki_files
from pki import ocsp as pki_ocsp
from pki import signer as pki_signer
from pki.profile import urls_for
from services import clock, settings
from services.errors import DomainError

ONLINE_KEYS = ("issuing", "ocsp", "cmp")
CHAIN = ("root.crt", "issuing.crt", "ocsp.crt")
# What load_ca, ocsp_signer_id and root_answer are built from.
WATCHED = (*CHAIN, "cmp.crt", *(f"{role}.{kind}" for role in ONLINE_KEYS for kind in ("key", "p11")),
           "root.crl")
FRESH_FOR = 1.0        # seconds; a new OCSP signer is valid at once, the old one for days yet

log = logging.getLogger(__name__)


def read(name: str) -> bytes | None:
    data = CaFile.select(CaFile.data).where(CaFile.name == name).scalar()
    return None if data is None else bytes(data)


def names(prefix: str) -> list[str]:
    """The names under a folder of the old layout (`root-ocsp/`), sorted."""
    return [name for (name,) in CaFile.select(CaFile.name)
            .where(CaFile.name.startswith(prefix)).order_by(CaFile.name).tuples()]


def write(name: str, data: bytes) -> None:
    now = clock.now()
    (CaFile.insert(name=name, data=data, version=1, changed_at=now)
     .on_conflict(conflict_target=[CaFile.name],
                  update={CaFile.data: data, CaFile.version: CaFile.version + 1,
                          CaFile.changed_at: now})
     .execute())
    _seen.clear()


def delete(name: str) -> None:
    CaFile.delete().where(CaFile.name == name).execute()
    _seen.clear()


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


def shred(path: Path) -> None:
    """Overwrite, then remove: an encrypted key leaves no copy in the instance folder (as far
    as the file system lets a file be overwritten in place)."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.write(os.urandom(size))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()


def exists() -> bool:
    return CaFile.select().where(CaFile.name.in_(CHAIN)).count() == len(CHAIN)


_seen: dict = {}         # "versions": {name: version} of WATCHED, "at": when they were read


def _versions() -> dict[str, int]:
    now = time.monotonic()
    if not _seen or now - _seen["at"] >= FRESH_FOR:
        found = dict(CaFile.select(CaFile.name, CaFile.version)
                     .where(CaFile.name.in_(WATCHED)).tuples())
        _seen.update(versions=found, at=now)
    return _seen["versions"]


def adopt_folder() -> int:
    """Move the CA of an instance made before it lived in the database (`<instance>/ca/`) in,
    on the first start after the upgrade, then remove the folder (its keys overwritten first):
    from then on the database is the only copy. A folder beside a database that already holds
    a CA is left alone, with a warning. Returns the number of files moved in."""
    old = settings.current().instance / "ca"
    if not old.is_dir():
        return 0
    from services import audit
    files = sorted(path for path in old.rglob("*")
                   if path.is_file() and not path.name.endswith(".new"))
    with one_at_a_time("ca-adopt"), db.atomic():
        if exists():
            log.warning("%s is not read: the database holds the CA", old)
            return 0
        for path in files:
            write(path.relative_to(old).as_posix(), path.read_bytes())
        audit.record("system", "ca.adopt", str(old), files=len(files))
    for path in files:
        if path.suffix == ".key":
            shred(path)
    shutil.rmtree(old)
    forget_ca()
    return len(files)


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
    """Record where `signer` is: its encrypted PKCS#8, or its CKA_ID in the token."""
    with db.atomic():
        if isinstance(signer, pki_signer.Pkcs11Signer):
            write(f"{role}.p11", signer.cka_id.hex().encode() + b"\n")
            delete(f"{role}.key")
        else:
            write(f"{role}.key", signer.encrypted_pem(settings.current().ca_passphrase))
            delete(f"{role}.p11")


def _load_key(role: str) -> pki_signer.Signer:
    reference = read(f"{role}.p11")
    if reference is not None:
        if backend() != "pkcs11":
            raise DomainError("ca_token_unconfigured", status=503)
        return token().find(bytes.fromhex(reference.decode().strip()))
    return pki_signer.FileSigner.load(read(f"{role}.key"), settings.current().ca_passphrase)


def store_certificate(role: str, cert: x509.Certificate) -> None:
    write(f"{role}.crt", pki_files.cert_pem(cert))


def load_ca() -> pki_ca.CaKeys:
    """The online CA, loaded once per process and again when a host re-issues the OCSP signer
    or the issuing CA certificate."""
    versions = _versions()
    return _load(tuple(versions.get(name) for name in WATCHED[:-1]))


def forget_ca() -> None:
    """Drop what was loaded, so the next use reads the database again."""
    _seen.clear()
    _load.cache_clear()
    _signer_id.cache_clear()
    _root_answers.cache_clear()


@functools.lru_cache(maxsize=1)
def _load(_versions_of_parts) -> pki_ca.CaKeys:
    if not exists():
        raise DomainError("ca_missing", status=503)
    certs = {part: x509.load_pem_x509_certificate(read(f"{part}.crt"))
             for part in ("root", "issuing", "ocsp")}
    cmp = read("cmp.crt")
    return pki_ca.CaKeys(root_cert=certs["root"], issuing_cert=certs["issuing"],
                         issuing_key=_load_key("issuing"), ocsp_cert=certs["ocsp"],
                         ocsp_key=_load_key("ocsp"),
                         cmp_cert=cmp and x509.load_pem_x509_certificate(cmp),
                         cmp_key=cmp and _load_key("cmp"))


SIGNER_DAYS = 30
SIGNER_RENEW_BEFORE = timedelta(days=7)


def signer_due(role: str, at=None) -> bool:
    """Whether the delegated signer of `role` (pki.ca.SIGNER_ROLES) is due to be re-issued at
    `at` (default now): near its end, or, for a CMP signer of a CA made before there was
    one, missing."""
    keys = load_ca()
    cert = keys.ocsp_cert if role == "ocsp" else keys.cmp_cert
    return (cert is None or cert.not_valid_after_utc - clock.aware(at or clock.now())
            < SIGNER_RENEW_BEFORE)


def issue_signer(role: str, issuing_cert: x509.Certificate, issuing_key) -> x509.Certificate:
    """A new delegated signer of `role` with a new key, signed by the issuing CA and stored
    with its key in one transaction: no host ever loads one without the other."""
    signer = new_key(role)
    cert, _ = pki_ca.create_signer(role, settings.current().ca_org, issuing_cert, issuing_key,
                                   clock.aware(clock.now()), days=SIGNER_DAYS,
                                   public_key=signer.public_key())
    with db.atomic():
        store_key(role, signer)
        store_certificate(role, cert)
    forget_ca()
    return cert


def ocsp_signer_id() -> str:
    """SHA-256 of the current OCSP signer certificate, in hex: stored answers name it. Asked
    on every OCSP request, so it looks at the version seen last, as load_ca does."""
    version = _versions().get("ocsp.crt")
    if version is None:
        load_ca()                    # says that the CA is missing
    return _signer_id(version)


@functools.lru_cache(maxsize=4)
def _signer_id(_version) -> str:
    cert = x509.load_pem_x509_certificate(read("ocsp.crt"))
    return cert.fingerprint(hashes.SHA256()).hex()


def rotate_signer(role: str, actor: str) -> str:
    """Issue a new delegated signer of `role`; returns its fingerprint."""
    from services import audit
    keys = load_ca()
    cert = issue_signer(role, keys.issuing_cert, keys.issuing_key)
    audit.record(actor, f"{role}_signer.rotate", pki_ca.fingerprint(cert))
    return pki_ca.fingerprint(cert)


def cmp_signer() -> tuple[x509.Certificate, pki_signer.Signer]:
    """The CMP signer's certificate and key, issued on first use for a CA made before there
    was one (once, however many hosts ask at the same time)."""
    keys = load_ca()
    if keys.cmp_cert is None:
        with db.atomic():
            wait_turn("cmp-signer")
            if read("cmp.crt") is None:
                rotate_signer("cmp", "system")
        keys = load_ca()
    return keys.cmp_cert, keys.cmp_key


@dataclass(frozen=True)
class RootCrl:
    der: bytes
    number: int
    this_update: object      # naive UTC, as the database keeps times
    next_update: object


def root_crl() -> RootCrl | None:
    """The root's latest CRL, as its last ceremony left it."""
    der = read("root.crl")
    if der is None:
        return None
    crl = x509.load_der_x509_crl(der)
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    return RootCrl(der, number, clock.naive(crl.last_update_utc), clock.naive(crl.next_update_utc))


def root_issued() -> list[x509.Certificate]:
    """Every certificate the root signed (the issuing CA certificates, old and current)."""
    return [x509.load_pem_x509_certificate(read(name)) for name in names("root-issued/")]


def root_answer(serial: int, algorithm: str) -> tuple | None:
    """The root's pre-signed OCSP answer about one of its certificates: (DER, thisUpdate,
    nextUpdate), times naive UTC."""
    version = _versions().get("root.crl")     # a ceremony writes it last
    if version is None:
        return None
    return _root_answers(version).get(f"{serial:x}-{algorithm}")


@functools.lru_cache(maxsize=1)
def _root_answers(_version) -> dict[str, tuple]:
    found = {}
    for name, der in (CaFile.select(CaFile.name, CaFile.data)
                      .where(CaFile.name.startswith("root-ocsp/")).tuples()):
        der = bytes(der)
        this_update, next_update = pki_ocsp.answer_times(der)
        found[Path(name).stem] = (der, clock.naive(this_update), clock.naive(next_update))
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
