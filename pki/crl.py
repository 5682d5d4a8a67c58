"""Certificate revocation lists (RFC 5280 section 5): the issuing CA's v2 CRL, signed SHA-256.

`build_crl` takes plain revocation records and returns a signed `x509.CertificateRevocationList`;
`pki.lint.lint_crl` checks the result with pkilint's PKIX CRL linter.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509

from .errors import PkiError
from .signer import as_signer

REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key-compromise": x509.ReasonFlags.key_compromise,
    "affiliation-changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation-of-operation": x509.ReasonFlags.cessation_of_operation,
    "certificate-hold": x509.ReasonFlags.certificate_hold,
    "privilege-withdrawn": x509.ReasonFlags.privilege_withdrawn,
}

# RFC 5280 4.1.2.2 / 5.2.3: serials and CRL numbers are positive (CRL numbers may be 0) and at most
# 20 octets in DER, i.e. below 2**159.
_MAX_INTEGER = 1 << 159
# cryptography refuses dates before this (UTCTime's range starts in 1950).
_EARLIEST = dt.datetime(1950, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: dt.datetime  # aware
    reason: str  # a key of REASONS
    invalidity_date: dt.datetime | None = None  # only with "key-compromise"


def _bad_time(value) -> bool:
    return (not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None
            or value < _EARLIEST)


def _aware(value, what: str) -> dt.datetime:
    if _bad_time(value):
        raise PkiError("crl_invalid", f"{what} must be an aware datetime from 1950, got {value!r}")
    return value


def _reason_extensions() -> dict[str, list[x509.Extension]]:
    # One immutable extension list per reason, shared by every entry with that reason. The value is
    # the reasonCode's DER, encoded once here: cryptography would otherwise encode the same three
    # bytes again for every entry. The CRL's bytes are the same either way.
    out: dict[str, list[x509.Extension]] = {}
    for name, flag in REASONS.items():
        # RFC 5280 5.3.1: "the reason code CRL entry extension SHOULD be absent instead of using
        # the unspecified (0) reasonCode value"; certificateHold travels as an ordinary reason code.
        der = x509.CRLReason(flag).public_bytes()
        out[name] = [] if flag is x509.ReasonFlags.unspecified else [x509.Extension(
            x509.CRLReason.oid, False, x509.UnrecognizedExtension(x509.CRLReason.oid, der))]
    return out


_REASON_EXTENSIONS = _reason_extensions()


def _revoked(entry, seen: set[int]) -> x509.RevokedCertificate:
    # Runs once per revoked certificate (100,000 and more): checks are inline, the messages
    # are built only on failure.
    if not isinstance(entry, RevokedEntry):
        raise PkiError("crl_invalid", f"not a RevokedEntry: {entry!r}")
    serial, revoked_at, reason = entry.serial, entry.revoked_at, entry.reason
    if type(serial) is not int or not 0 < serial < _MAX_INTEGER:
        raise PkiError("crl_invalid", f"serial out of range: {serial!r}")
    if serial in seen:
        # Two entries for one certificate mean the caller's revocation records disagree;
        # publishing either one would hide the other.
        raise PkiError("crl_invalid", f"serial listed twice: {serial:x}")
    seen.add(serial)
    extensions = _REASON_EXTENSIONS.get(reason) if type(reason) is str else None
    if extensions is None:
        raise PkiError("crl_invalid", f"unknown reason: {reason!r}")
    if _bad_time(revoked_at):
        raise PkiError("crl_invalid", f"revoked_at must be an aware datetime from 1950: {revoked_at!r}")
    if entry.invalidity_date is not None:
        if reason != "key-compromise":
            raise PkiError("crl_invalid", "an invalidity date is recorded only for key-compromise")
        if _bad_time(entry.invalidity_date):
            raise PkiError("crl_invalid", f"invalidity_date must be an aware datetime from 1950: "
                                          f"{entry.invalidity_date!r}")
        extensions = [*extensions, x509.Extension(
            x509.InvalidityDate.oid, False, x509.InvalidityDate(entry.invalidity_date))]
    # The builder's constructor, not its chained setters: each setter makes a new builder, which
    # doubles the per-entry cost. Everything the setters would check has been checked above, and
    # cryptography converts aware datetimes to UTC itself.
    try:
        return x509.RevokedCertificateBuilder(serial, revoked_at, extensions).build()
    except (ValueError, TypeError, OverflowError) as exc:
        raise PkiError("crl_invalid", f"entry {serial:x}: {exc}") from None


def build_crl(issuing_cert: x509.Certificate, issuing_key, entries: Iterable[RevokedEntry],
              crl_number: int, this_update: dt.datetime, next_update: dt.datetime,
              partition_url: str | None = None) -> x509.CertificateRevocationList:
    """The issuing CA's signed v2 CRL listing `entries` (in the order given).

    CRL extensions: cRLNumber and authorityKeyIdentifier (the issuing certificate's SKI), both
    non-critical as RFC 5280 5.2.1/5.2.3 require. Entry extensions: reasonCode (absent for
    "unspecified") and, for key compromise, invalidityDate when known.

    With `partition_url`, the CRL is one partition: a critical issuingDistributionPoint names
    that URL (RFC 5280 5.2.5), so that it cannot be taken for a complete CRL of the issuer, and
    says it lists end-entity certificates only.
    """
    this_update = _aware(this_update, "this_update")
    next_update = _aware(next_update, "next_update")
    if next_update <= this_update:
        raise PkiError("crl_invalid", "next_update must be after this_update")
    if type(crl_number) is not int or not 0 <= crl_number < _MAX_INTEGER:
        raise PkiError("crl_invalid", f"CRL number out of range: {crl_number!r}")
    if not isinstance(issuing_cert, x509.Certificate):
        raise PkiError("crl_invalid", "issuing_cert is not a certificate")
    try:
        ski = issuing_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        raise PkiError("crl_invalid", "issuing certificate has no subjectKeyIdentifier") from None
    if not hasattr(issuing_key, "public_key") or issuing_key.public_key() != issuing_cert.public_key():
        # A CRL signed by another key would be published and then rejected by every relying party.
        raise PkiError("crl_invalid", "issuing_key does not belong to issuing_cert")

    try:
        entries = iter(entries)
    except TypeError:
        raise PkiError("crl_invalid", "entries is not iterable") from None
    seen: set[int] = set()
    revoked = [_revoked(entry, seen) for entry in entries]
    extensions = [
        x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(crl_number)),
        x509.Extension(x509.AuthorityKeyIdentifier.oid, False,
                       x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)),
    ]
    if partition_url is not None:
        extensions.append(x509.Extension(x509.IssuingDistributionPoint.oid, True,
                                         x509.IssuingDistributionPoint(
                                             full_name=[x509.UniformResourceIdentifier(partition_url)],
                                             relative_name=None, only_contains_user_certs=True,
                                             only_contains_ca_certs=False, only_some_reasons=None,
                                             indirect_crl=False,
                                             only_contains_attribute_certs=False)))
    # One constructor call with the finished list: add_revoked_certificate copies the list on
    # every call, which is quadratic in the number of entries.
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuing_cert.subject,
        last_update=this_update,
        next_update=next_update,
        extensions=extensions,
        revoked_certificates=revoked,
    )
    try:
        return as_signer(issuing_key).sign_crl(builder)
    except (ValueError, TypeError) as exc:
        raise PkiError("crl_invalid", str(exc)) from None
