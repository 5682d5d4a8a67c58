"""Key ceremonies: the only code that uses the root's key. It lives offline, encrypted under a
passphrase CertCenter never stores; the operator brings it to `ca init` (which creates it),
`ca sign-root-crl`, `ca new-issuing` and `ca move-root-out`, and takes it away again.

Each ceremony ends the same way (publish_root_status): the root signs its CRL (ARL) and, for
every CA certificate it issued, an OCSP answer valid until that CRL's nextUpdate. Relying
parties that check the issuing CA by OCSP get those pre-signed answers; those that check by
CRL get the ARL. Nothing the root signs is needed more often than the ARL is renewed.
"""
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from pki import ca as pki_ca
from pki import crl as pki_crl
from pki import files as pki_files
from pki import lint as pki_lint
from pki import ocsp as pki_ocsp
from pki import signer as pki_signer
from pki.errors import PkiError
from services import audit, ca_store, clock, settings, status
from services.errors import DomainError

ARL_DAYS = 365
ARL_WARN_BEFORE = dt.timedelta(days=30)
MIN_ROOT_PASSPHRASE = 12
ROOT_KEY_FILE = "root.key"
_ANSWER_HASHES = (hashes.SHA1(), hashes.SHA256())   # a CertID may use either (pki.ocsp)


@dataclass
class InitResult:
    created: bool
    fingerprints: dict
    root_key: Path | None = None


def _fingerprints() -> dict:
    keys = ca_store.load_ca()
    return {"root": pki_ca.fingerprint(keys.root_cert),
            "issuing": pki_ca.fingerprint(keys.issuing_cert),
            "ocsp": pki_ca.fingerprint(keys.ocsp_cert)}


def _write_root_key(root_out: Path, root: pki_signer.FileSigner, passphrase: bytes,
                    root_cert: x509.Certificate) -> Path:
    if len(passphrase) < MIN_ROOT_PASSPHRASE:
        raise DomainError("root_passphrase_short", minimum=MIN_ROOT_PASSPHRASE)
    root_out.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = root_out / ROOT_KEY_FILE
    if path.exists():
        raise DomainError("root_key_exists", path=str(path))
    ca_store.write_private(path, root.encrypted_pem(passphrase))
    ca_store.write_public(root_out / "root.crt", pki_files.cert_pem(root_cert))
    return path


def init_ca(root_out: Path | None = None, root_passphrase: bytes | None = None,
            arl_days: int = ARL_DAYS, actor: str = "system",
            crl_partitions: int = status.CRL_PARTITIONS_DEFAULT) -> InitResult:
    """Create the root, the issuing CA and the OCSP signer unless they exist (idempotent). The
    root's key goes to `root_out`, encrypted under `root_passphrase`, and nowhere else; the
    issuing CA's and OCSP signer's keys go where the configured backend keeps keys. The CRL is
    split into `crl_partitions` partitions, fixed from then on: certificates name theirs."""
    status.check_crl_partitions(crl_partitions)
    if ca_store.exists():
        return InitResult(False, _fingerprints())
    if root_out is None or root_passphrase is None:
        raise DomainError("root_out_needed")
    config = settings.current()
    now = clock.aware(clock.now())
    root_cert, root = pki_ca.create_root(config.ca_org, now)
    key_path = _write_root_key(Path(root_out), root, root_passphrase, root_cert)
    ca_store.write("root.crt", pki_files.cert_pem(root_cert))
    issuing = ca_store.new_key("issuing")
    issuing_cert, _ = pki_ca.create_issuing(config.ca_org, root_cert, root, config.policy_arc,
                                            now, ca_store.urls(), public_key=issuing.public_key())
    ca_store.store_key("issuing", issuing)
    ca_store.store_certificate("issuing", issuing_cert)
    _keep_root_issued(issuing_cert)
    for role in ("ocsp", "cmp"):
        ca_store.issue_signer(role, issuing_cert, issuing)
    publish_root_status(root, root_cert, arl_days)
    status.set_crl_partitions(crl_partitions)
    fingerprints = _fingerprints()
    audit.record(actor, "ca.init", fingerprints["root"], backend=ca_store.backend(),
                 issuing=fingerprints["issuing"], crl_partitions=crl_partitions)
    return InitResult(True, fingerprints, key_path)


def open_root(root_key: Path, passphrase: bytes) -> pki_signer.FileSigner:
    """The offline root key, checked against this CA's root certificate."""
    try:
        pem = Path(root_key).read_bytes()
    except OSError as error:
        raise DomainError("root_key_unreadable", path=str(root_key), reason=error.strerror) from None
    try:
        root = pki_signer.FileSigner.load(pem, passphrase)
    except PkiError as error:
        raise DomainError("root_passphrase_incorrect" if error.code == "ca_passphrase_incorrect"
                          else "root_key_unreadable", path=str(root_key), reason=error.code) from None
    if root.public_key() != ca_store.load_ca().root_cert.public_key():
        raise DomainError("root_key_mismatch", path=str(root_key))
    return root


def _keep_root_issued(cert: x509.Certificate) -> None:
    ca_store.write(f"root-issued/{cert.serial_number:x}.crt", pki_files.cert_pem(cert))


def publish_root_status(root, root_cert: x509.Certificate, days: int = ARL_DAYS) -> ca_store.RootCrl:
    """The root's CRL with the next number, and a "good" answer signed for every unexpired
    certificate the root issued, valid as long as the CRL. None of the root's certificates is
    revoked: a compromised issuing CA is handled by a new hierarchy, not by this CRL."""
    if not 1 <= days <= 3 * ARL_DAYS:
        raise DomainError("root_crl_days", maximum=3 * ARL_DAYS)
    now = clock.aware(clock.now()).replace(microsecond=0)
    next_update = min(now + dt.timedelta(days=days), root_cert.not_valid_after_utc)
    last = ca_store.root_crl()
    crl = pki_crl.build_crl(root_cert, root, [], (last.number if last else 0) + 1, now, next_update)
    findings = pki_lint.lint_crl(crl)
    if findings:
        raise DomainError("lint_failed", status=500, findings="; ".join(findings))
    for cert in ca_store.root_issued():
        if cert.not_valid_after_utc <= now:
            continue
        for algorithm in _ANSWER_HASHES:
            name_hash, key_hash = pki_ocsp.issuer_hashes(root_cert, algorithm)
            question = pki_ocsp.OcspQuestion(name_hash, key_hash, cert.serial_number, algorithm, None)
            der = pki_ocsp.build_response(question, pki_ocsp.CertStatus("good"), root_cert, root,
                                          now, next_update)
            ca_store.write(f"root-ocsp/{cert.serial_number:x}-{algorithm.name}.der", der)
    # Last: readers reload the answers when this one changes.
    ca_store.write("root.crl", crl.public_bytes(Encoding.DER))
    return ca_store.root_crl()


def sign_root_crl(root_key: Path, passphrase: bytes, days: int = ARL_DAYS,
                  actor: str = "system") -> ca_store.RootCrl:
    """Ceremony: renew the root's CRL and its pre-signed OCSP answers."""
    root = open_root(root_key, passphrase)
    published = publish_root_status(root, ca_store.load_ca().root_cert, days)
    audit.record(actor, "ca.root_crl", str(published.number),
                 next_update=published.next_update.isoformat())
    return published


def reissue_issuing(root, actor: str, action: str) -> x509.Certificate:
    """A new issuing CA certificate for the same key and subject, with this version's profile
    (every type's policy, where its status is published) and a fresh validity. Certificates
    issued before keep chaining: their issuer name and key identifier are unchanged."""
    config, keys = settings.current(), ca_store.load_ca()
    cert, _ = pki_ca.create_issuing(config.ca_org, keys.root_cert, root, config.policy_arc,
                                    clock.aware(clock.now()), ca_store.urls(),
                                    public_key=keys.issuing_key.public_key(),
                                    subject=keys.issuing_cert.subject)
    _keep_root_issued(keys.issuing_cert)
    _keep_root_issued(cert)
    ca_store.store_certificate("issuing", cert)
    ca_store.forget_ca()
    publish_root_status(root, keys.root_cert)
    audit.record(actor, action, pki_ca.fingerprint(cert),
                 previous=pki_ca.fingerprint(keys.issuing_cert))
    return cert


def new_issuing(root_key: Path, passphrase: bytes, actor: str = "system") -> x509.Certificate:
    """Ceremony: re-issue the issuing CA certificate (before it expires, or to carry a changed
    profile)."""
    return reissue_issuing(open_root(root_key, passphrase), actor, "ca.new_issuing")


def move_root_out(root_out: Path, passphrase: bytes, actor: str = "system") -> Path:
    """Migration of an instance made before the root went offline: the root key leaves the
    CA's storage for `root_out` under a new passphrase, and the issuing CA certificate is
    re-issued with the same key and subject, now naming where its status is published."""
    online = ca_store.read(ROOT_KEY_FILE)
    if online is None:
        raise DomainError("root_already_offline")
    try:
        root = pki_signer.FileSigner.load(online, settings.current().ca_passphrase)
    except PkiError:
        raise DomainError("ca_passphrase_incorrect", status=500) from None
    root_cert = ca_store.load_ca().root_cert
    if root.public_key() != root_cert.public_key():
        raise DomainError("root_key_mismatch", path=ROOT_KEY_FILE)
    path = _write_root_key(Path(root_out), root, passphrase, root_cert)
    reissue_issuing(root, actor, "ca.move_root_out")
    ca_store.delete(ROOT_KEY_FILE)
    return path


def root_crl_warning(at=None) -> str | None:
    """What `jobs run` says when the root's CRL needs a ceremony soon (or an online root
    still waits for move-root-out)."""
    if ca_store.read(ROOT_KEY_FILE) is not None:
        return ("The root CA's key is still online: move it out with "
                "`flask --app app ca move-root-out --root-out DIR`.")
    published = ca_store.root_crl()
    if published is None:
        return "The root CA has published no CRL: run `flask --app app ca sign-root-crl`."
    left = published.next_update - (at or clock.now())
    if left < ARL_WARN_BEFORE:
        return (f"The root CA's CRL runs out on {published.next_update:%Y-%m-%d %H:%M}Z "
                f"({max(0, left.days)} days): sign a new one with "
                "`flask --app app ca sign-root-crl --root-key FILE`.")
    return None
