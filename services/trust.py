"""Trust anchors: the root CAs of other institutions whose certificates customers may register
here. They are PEM files in `<instance>/trust/`, named by their SHA-256 fingerprint, added by an
operator with `flask --app app trust add FILE`."""
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from services import audit, settings
from services.errors import DomainError


def folder() -> Path:
    return settings.current().instance / "trust"


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _load(data: bytes) -> x509.Certificate:
    """One certificate, PEM or DER; else DomainError."""
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            certs = x509.load_pem_x509_certificates(data)
            if len(certs) != 1:
                raise DomainError("trust_one_certificate")
            cert = certs[0]
        else:
            cert = x509.load_der_x509_certificate(data)
        cert.subject.rfc4514_string()             # cryptography parses lazily: fail here
    except DomainError:
        raise
    except Exception:
        raise DomainError("trust_unreadable") from None
    return cert


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return constraints.ca


def anchors() -> list[x509.Certificate]:
    """The trust anchors in the folder. A file that no longer reads is skipped rather than
    stopping every registration; `trust list` shows what is in force."""
    found = []
    for path in sorted(folder().glob("*.pem")):
        try:
            found.append(x509.load_pem_x509_certificate(path.read_bytes()))
        except ValueError:
            continue
    return found


def add_anchor(data: bytes, actor: str) -> tuple[x509.Certificate, bool]:
    """Store a CA certificate (PEM or DER) as a trust anchor; (certificate, whether it is
    new). Adding one twice changes nothing."""
    cert = _load(data)
    if not _is_ca(cert):
        raise DomainError("trust_not_ca")
    target = folder() / f"{fingerprint(cert)}.pem"
    if target.exists():
        return cert, False
    folder().mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written under a temporary name, then renamed: a reader never sees half a file.
    partial = target.with_suffix(".tmp")
    partial.write_bytes(cert.public_bytes(Encoding.PEM))
    partial.replace(target)
    audit.record(actor, "trust.add", fingerprint(cert), subject=cert.subject.rfc4514_string())
    return cert, True


def _within(cert: x509.Certificate, at) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:   # InvalidSignature, a name mismatch (ValueError), a key type we lack
        return False
    return True


def chains_to_anchor(cert: x509.Certificate, extra: list[x509.Certificate], at) -> bool:
    """Whether `cert` was signed by a trust anchor valid at `at` (an aware time), directly or
    through one CA certificate in between, found among `extra` (the certificates a .p12
    carried) or the anchors. Longer paths are not built: the institutions we trust issue
    their customers' certificates from a root or from one intermediate."""
    roots = [a for a in anchors() if _within(a, at)]
    if any(_issued_by(cert, root) for root in roots):
        return True
    middles = [c for c in [*extra, *roots] if _is_ca(c) and _within(c, at)]
    return any(_issued_by(cert, middle) and any(_issued_by(middle, root) for root in roots)
               for middle in middles)
