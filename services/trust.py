"""Trust anchors, and the path from a customer's certificate up to one, for registering other
institutions' certificates. Anchors are root CAs only, kept in the database (table
trust_certificate, shared by every host) by their SHA-256 fingerprint. CA certificates in
between come from the upload itself, from the intermediates an operator added (kept apart: they
help build a path, never end one), or, when CERTCENTER_FETCH_INTERMEDIATES=1, from the
certificate's caIssuers URL. Both are added with `flask --app app trust add FILE [--as
intermediate]`.

The path is built and checked by cryptography's verifier (RFC 5280): validity at the given time,
each signature, basicConstraints CA (and keyCertSign) on every CA certificate. Revocation is not
checked here."""
import logging
import shutil

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store
from peewee import IntegrityError

from models import TrustCertificate, db
from pki.bundle import is_ca
from services import audit, ca_issuers, clock, settings
from services.errors import DomainError

ROOT, INTERMEDIATE = "root", "intermediate"
MAX_DEPTH = 8         # certificates above the customer's; the verifier's own default
MAX_FETCHES = 3       # caIssuers requests per path: NPKI has one or two CAs below the root

_ANY = Criticality.AGNOSTIC
log = logging.getLogger(__name__)


def _key_cert_sign(_policy, _cert, usage) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("a CA certificate whose keyUsage lacks keyCertSign")


# The verifier's defaults are the web PKI's, which NPKI certificates do not follow (KISA's
# profile marks certificatePolicies critical, authorityKeyIdentifier may name issuer and serial,
# there is no serverAuth/clientAuth usage). So: any extension, certificatePolicies accepted as
# critical (any other unknown critical extension still fails, as RFC 5280 says), and on CA
# certificates basicConstraints required.
_EE_POLICY = ExtensionPolicy.permit_all().may_be_present(x509.CertificatePolicies, _ANY, None)
_CA_POLICY = (_EE_POLICY.require_present(x509.BasicConstraints, _ANY, None)
              .may_be_present(x509.KeyUsage, _ANY, _key_cert_sign))


class NoPath(Exception):
    """No valid path to a trust anchor. `issuer_missing`: some CA certificate on the way up is
    nowhere to be found, so we cannot tell whether it would lead to an anchor."""

    def __init__(self, issuer_missing: bool):
        super().__init__("issuer missing" if issuer_missing else "untrusted")
        self.issuer_missing = issuer_missing


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


def _self_signed(cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:   # InvalidSignature, a name mismatch (ValueError), a key type we lack
        return False
    return True


def _read(kind: str) -> list[x509.Certificate]:
    """The certificates of one kind, by fingerprint."""
    return [x509.load_der_x509_certificate(bytes(der)) for (der,) in
            TrustCertificate.select(TrustCertificate.der).where(TrustCertificate.kind == kind)
            .order_by(TrustCertificate.fingerprint).tuples()]


def anchors() -> list[x509.Certificate]:
    return _read(ROOT)


def intermediates() -> list[x509.Certificate]:
    return _read(INTERMEDIATE)


def add(data: bytes, kind: str, actor: str) -> tuple[x509.Certificate, bool]:
    """Store a CA certificate (PEM or DER) as a trust anchor (ROOT, self-signed) or as an
    INTERMEDIATE on the way to one; (certificate, whether it is new). Adding one twice changes
    nothing."""
    cert = _load(data)
    if not is_ca(cert):
        raise DomainError("trust_not_ca")
    if kind == ROOT and not _self_signed(cert):
        raise DomainError("trust_not_root", issuer=cert.issuer.rfc4514_string())
    if kind == INTERMEDIATE and _self_signed(cert):
        raise DomainError("trust_is_root")
    try:
        with db.atomic():
            TrustCertificate.create(fingerprint=fingerprint(cert), kind=kind,
                                    der=cert.public_bytes(Encoding.DER), added_at=clock.now())
            audit.record(actor, "trust.add", fingerprint(cert),
                         subject=cert.subject.rfc4514_string(), kind=kind)
    except IntegrityError:
        # There already, as this kind (a root is self-signed, an intermediate is not).
        return cert, False
    return cert, True


def adopt_folder() -> int:
    """Move the trust anchors of an instance made before they lived in the database
    (`<instance>/trust/*.pem`, intermediates in `trust/intermediates/`) in, on the first start
    after the upgrade, and remove the folder. Returns the number of certificates added."""
    old = settings.current().instance / "trust"
    if not old.is_dir():
        return 0
    added = 0
    for kind, folder in ((ROOT, old), (INTERMEDIATE, old / "intermediates")):
        for path in sorted(folder.glob("*.pem")):
            try:
                added += add(path.read_bytes(), kind, "system")[1]
            except DomainError as error:     # a file that no longer reads was skipped before too
                log.warning("%s not adopted: %s", path, error.code)
    shutil.rmtree(old)
    return added


def _lacking_issuer(cert: x509.Certificate, roots: list, known: list) -> x509.Certificate | None:
    """The first certificate on the way up from `cert`, by name, whose issuer we hold no
    certificate for; None when the names lead to a root."""
    for _ in range(MAX_DEPTH + 1):
        if cert in roots or cert.issuer == cert.subject:
            return None
        issuers = [c for c in [*roots, *known] if c.subject == cert.issuer]
        if not issuers:
            return cert
        cert = issuers[0]
    return None


def path(cert: x509.Certificate, extra: list[x509.Certificate], at) -> list[x509.Certificate]:
    """The validated chain from `cert` to a trust anchor at `at` (an aware time), through CA
    certificates from `extra` (those the upload carried), the operator's intermediates, and,
    only when the operator allows it and one is missing, those at caIssuers URLs; else NoPath."""
    roots = anchors()
    if not roots:
        raise NoPath(issuer_missing=False)
    pool = [*extra, *intermediates()]
    lacking = _lacking_issuer(cert, roots, pool)
    for _ in range(MAX_FETCHES):
        if lacking is None or not settings.current().fetch_intermediates:
            break
        fetched = ca_issuers.fetch(lacking)
        if not fetched:
            break
        pool += fetched
        asked, lacking = lacking, _lacking_issuer(cert, roots, pool)
        if lacking == asked:
            break             # what the URL gave was not the issuer: asking again would not help
    verifier = (PolicyBuilder().store(Store(roots)).time(at).max_chain_depth(MAX_DEPTH)
                .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
                .build_client_verifier())
    try:
        return verifier.verify(cert, pool).chain
    except Exception:  # VerificationError, or a certificate the verifier cannot parse
        raise NoPath(issuer_missing=lacking is not None) from None
