"""Certificate revocation lists (RFC 5280 section 5): the issuing CA's v2 CRL, signed SHA-256.

`build_crl_der` takes plain revocation records and returns the signed CRL's DER (`build_crl`,
the same as an `x509.CertificateRevocationList`); `pki.lint.lint_crl` checks the result with
pkilint's PKIX CRL linter.
"""

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .errors import PkiError
from .signer import as_signer, der_tlv, throwaway_key

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


class RevokedEntry(NamedTuple):       # a tuple: made 100,000 times per full CRL
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


# The entries are encoded here, in DER, rather than through cryptography's
# RevokedCertificateBuilder: that builds a Python object per entry which the CRL builder
# encodes again, and the signed CRL's public_bytes encodes the whole list a third time. For
# 100,000 entries that was most of a publication. tests/pki/test_pki_crl.py checks that the
# bytes are exactly what cryptography makes of the same entries.

_REASON_CODE_OID = b"\x06\x03\x55\x1d\x15"       # id-ce-cRLReasons 2.5.29.21
_INVALIDITY_DATE_OID = b"\x06\x03\x55\x1d\x18"   # id-ce-invalidityDate 2.5.29.24


def _reason_codes() -> dict[str, bytes]:
    # RFC 5280 5.3.1: "the reason code CRL entry extension SHOULD be absent instead of using
    # the unspecified (0) reasonCode value"; certificateHold travels as an ordinary reason code.
    return {name: b"" if flag is x509.ReasonFlags.unspecified else der_tlv(
                0x30, _REASON_CODE_OID + der_tlv(0x04, x509.CRLReason(flag).public_bytes()))
            for name, flag in REASONS.items()}


_REASON_CODES = _reason_codes()
# An entry's crlEntryExtensions when the reason is all it carries, wrapped once here.
_REASON_EXTENSIONS = {name: der_tlv(0x30, code) if code else b""
                      for name, code in _REASON_CODES.items()}


def _generalized(m: dt.datetime) -> bytes:
    # %-formatting rather than strftime: a quarter of the time, per entry.
    return der_tlv(0x18, b"%04d%02d%02d%02d%02d%02dZ" % (m.year, m.month, m.day, m.hour,
                                                          m.minute, m.second))


# Two digits and one length byte, looked up rather than formatted: the UTCTime of 100,000
# entries in half the time of %-formatting.
_DIGITS = [b"%02d" % n for n in range(100)]
_BYTE = [bytes((n,)) for n in range(256)]


def _time(m: dt.datetime) -> bytes:
    """RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds."""
    year = m.year
    if year < 2050:
        digits = _DIGITS
        return b"".join((b"\x17\x0d", digits[year % 100], digits[m.month], digits[m.day],
                         digits[m.hour], digits[m.minute], digits[m.second], b"Z"))
    return _generalized(m)


def _utc(value, what: str) -> dt.datetime:
    """An aware datetime from 1950, in UTC."""
    return _aware(value, what).astimezone(dt.UTC)


def _revoked(entry, seen: set[int]) -> bytes:
    """One revokedCertificates entry, in DER. Runs once per revoked certificate (100,000 and
    more): checks are inline, the messages are built only on failure."""
    if not isinstance(entry, RevokedEntry):
        raise PkiError("crl_invalid", f"not a RevokedEntry: {entry!r}")
    serial, revoked_at, reason, invalidity_date = entry
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
    # The database's rows are aware UTC datetimes: checked by identity, the rest in full.
    if (revoked_at.__class__ is not dt.datetime or revoked_at.tzinfo is not dt.UTC
            or revoked_at < _EARLIEST):
        revoked_at = _utc(revoked_at, "revoked_at")
    if invalidity_date is not None:
        if reason != "key-compromise":
            raise PkiError("crl_invalid", "an invalidity date is recorded only for key-compromise")
        if _bad_time(invalidity_date):
            raise PkiError("crl_invalid", f"invalidity_date must be an aware datetime from 1950: "
                                          f"{invalidity_date!r}")
        # RFC 5280 5.3.2: the invalidity date is always a GeneralizedTime.
        at = _generalized(invalidity_date.astimezone(dt.UTC))
        extensions = der_tlv(0x30, _REASON_CODES[reason] + der_tlv(
            0x30, _INVALIDITY_DATE_OID + der_tlv(0x04, at)))
    number = serial.to_bytes((serial.bit_length() + 8) // 8, "big")   # room for the sign bit
    body = b"".join((b"\x02", _BYTE[len(number)], number, _time(revoked_at), extensions))
    # At most 2 + 20 (serial) + 17 (time) + 40 (both extensions) = 79 content bytes: the
    # length is always one byte.
    return b"\x30" + _BYTE[len(body)] + body


def _content(der: bytes, offset: int) -> tuple[int, int]:
    """Where the content of the DER element at `offset` starts and ends."""
    first = der[offset + 1]
    if first < 0x80:
        return offset + 2, offset + 2 + first
    start = offset + 2 + (first & 0x7F)
    return start, start + int.from_bytes(der[offset + 2:start], "big")


def _with_entries(tbs: bytes, revoked: bytes) -> bytes:
    """`tbs`, a TBSCertList without revoked certificates, with the revokedCertificates
    SEQUENCE `revoked` where RFC 5280 5.1 puts it: after version, signature, issuer,
    thisUpdate and nextUpdate, before the extensions."""
    start, end = _content(tbs, 0)
    offset = start
    for _field in range(5):
        offset = _content(tbs, offset)[1]
    return der_tlv(0x30, tbs[start:offset] + der_tlv(0x30, revoked) + tbs[offset:end])


def listed_der(crl_der: bytes) -> bytes:
    """The revokedCertificates entries of a CRL that build_crl_der made, in DER as they are
    (b"" when it lists none): for build_crl_der's `listed`."""
    start = _content(crl_der, 0)[0]              # CertificateList -> TBSCertList
    offset = _content(crl_der, start)[0]
    for _field in range(5):                      # version, signature, issuer, both times
        offset = _content(crl_der, offset)[1]
    if crl_der[offset] != 0x30:                  # the extensions, [0]: no entries
        return b""
    start, end = _content(crl_der, offset)
    return crl_der[start:end]


def build_crl_der(issuing_cert: x509.Certificate, issuing_key, entries: Iterable[RevokedEntry],
                  crl_number: int, this_update: dt.datetime, next_update: dt.datetime,
                  partition_url: str | None = None, listed: Iterable[bytes] = ()) -> bytes:
    """The issuing CA's signed v2 CRL listing `listed`, entries already in DER that
    listed_der took from CRLs of this CA, and then `entries` (in the order given), in DER.

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
    revoked = b"".join([*listed, *[_revoked(entry, seen) for entry in entries]])
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
    # cryptography writes the header (issuer, times, extensions) of a CRL without entries,
    # signed by the throwaway key; the entries go in, and the CA key signs the result.
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuing_cert.subject, last_update=this_update, next_update=next_update,
        extensions=extensions)
    try:
        tbs = builder.sign(throwaway_key(), hashes.SHA256()).tbs_certlist_bytes
        return as_signer(issuing_key).crl(_with_entries(tbs, revoked) if revoked else tbs)
    except (ValueError, TypeError) as exc:
        raise PkiError("crl_invalid", str(exc)) from None


def build_crl(issuing_cert: x509.Certificate, issuing_key, entries: Iterable[RevokedEntry],
              crl_number: int, this_update: dt.datetime, next_update: dt.datetime,
              partition_url: str | None = None) -> x509.CertificateRevocationList:
    """build_crl_der's CRL, loaded."""
    return x509.load_der_x509_crl(build_crl_der(issuing_cert, issuing_key, entries, crl_number,
                                                this_update, next_update, partition_url))
