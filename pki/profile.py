"""The end-entity certificate profile: certificate types, policy OIDs, URLs, validity and the builder."""

import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.x509.oid import NameOID

KST = ZoneInfo("Asia/Seoul")

# Placeholder until the project has a registered arc (an IANA enterprise number is free): 2.25
# followed by the top 28 bits of the project UUID 23987922-dc34-4a42-be9b-83855851e211, a value
# no RFC 9562 UUID can take (their variant bits make them >= 2**71), so it claims no one's OID.
# Not the full 2.25.<uuid>: a 128-bit component fails pkilint's decoder, Go before 1.22, wolfSSL
# and Botan, which then reject the whole certificate; nor 2.999, which pkilint cannot decode.
# Keep every component below 2**28, the size RFC 5280 users are expected to handle.
DEFAULT_POLICY_ARC = "2.25.37324690"

# npkiIdentifyData: the subjectAltName otherName carrying the real name and the VID.
IDENTIFY_DATA_OID = x509.ObjectIdentifier("1.2.410.200004.10.1.1")


@dataclass(frozen=True)
class CertType:
    id: str
    name_ko: str
    name_en: str
    holder: str  # "person" or "business"
    policy_suffix: str
    ou: str
    fee_won: int  # per year
    needs_approval: bool


CERT_TYPES: dict[str, CertType] = {
    t.id: t
    for t in (
        CertType("personal-banking", "개인 은행/신용카드/보험용",
                 "Personal: banking, credit card and insurance",
                 "person", "1.1.4", "personal4IB", 0, False),
        CertType("personal-general", "개인 범용", "Personal: general purpose",
                 "person", "1.1.1", "personal", 4400, False),
        CertType("business-banking", "법인 은행/보험용", "Business: banking and insurance",
                 "business", "1.1.2", "corporation4IB", 4400, True),
        CertType("business-general", "법인 범용", "Business: general purpose",
                 "business", "1.1.5", "corporation4EC", 110000, True),
    )
}


def policy_oid(arc: str, cert_type: CertType) -> x509.ObjectIdentifier:
    return x509.ObjectIdentifier(f"{arc}.{cert_type.policy_suffix}")


@dataclass(frozen=True)
class Urls:
    crl: str           # the CRL a certificate names: its partition's, or the full CRL
    ocsp: str
    ca_issuers: str
    root_crl: str      # the root's CRL (ARL), which lists the CA certificates it revoked
    root_cert: str


_PARTITION_PATH = re.compile(r"/pki/crl/(\d{1,3})\.crl\Z")   # after any base path


def urls_for(base_url: str, crl_partition: int | None = None) -> Urls:
    """The URLs under `base_url`; with `crl_partition`, `crl` is that partition's CRL
    (/pki/crl/<n>.crl) instead of the full one (/pki/issuing.crl)."""
    base = base_url.rstrip("/")
    crl = (f"{base}/pki/issuing.crl" if crl_partition is None
           else f"{base}/pki/crl/{crl_partition}.crl")
    return Urls(crl=crl, ocsp=f"{base}/ocsp",
                ca_issuers=f"{base}/pki/issuing.crt", root_crl=f"{base}/pki/root.crl",
                root_cert=f"{base}/pki/root.crt")


def crl_partition_named(cert: x509.Certificate) -> int | None:
    """The CRL partition `cert` names in its CRL distribution point (the inverse of
    urls_for), or None when it names the full CRL or none."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return None
    for point in points:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier):
                found = _PARTITION_PATH.search(urlsplit(name.value).path)
                if found:
                    return int(found.group(1))
    return None


def add_years(d, years: int):
    """The same calendar day `years` later; 29 February becomes 28 February so the span never exceeds the years."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


def validity_end(start_utc: dt.datetime, years: int = 1) -> dt.datetime:
    """23:59:59 KST on the KST calendar day `years` after the start's KST day, as an aware UTC datetime."""
    end_day = add_years(start_utc.astimezone(KST).date(), years)
    end = dt.datetime.combine(end_day, dt.time(23, 59, 59), tzinfo=KST)
    return end.astimezone(dt.UTC)


@dataclass
class EndEntityRequest:
    cert_type: CertType
    holder_name: str
    unique_digits: str
    bank_code: str
    ca_org: str
    public_key: object
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int
    policy_arc: str
    urls: Urls
    identify_data: bytes | None  # DER of the npkiIdentifyData value (npki.identify_data)


def key_identifiers(public_key, issuer_cert: x509.Certificate) -> list[x509.ExtensionType]:
    """SKI from the subject key and AKI from the issuer's own SKI, so the two always chain."""
    issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return [
        x509.SubjectKeyIdentifier.from_public_key(public_key),
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
    ]


def end_entity_builder(req: EndEntityRequest, issuer_cert: x509.Certificate) -> x509.CertificateBuilder:
    """The unsigned end-entity certificate; sign it with ca.sign_certificate after lint.require_clean."""
    # Encoded order C, O, OU, OU, CN: what NPKI toolkits expect. cryptography encodes C as
    # PrintableString and the rest as UTF8String by default.
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "KR"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, req.ca_org),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, req.cert_type.ou),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, req.bank_code),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{req.holder_name}(){req.unique_digits}"),
    ])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(req.public_key)
        .serial_number(req.serial)
        .not_valid_before(req.not_before)
        .not_valid_after(req.not_after)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        # Non-critical: RFC 5280 allows either, and generic validators then never reject our arc.
        .add_extension(x509.CertificatePolicies([
            x509.PolicyInformation(policy_oid(req.policy_arc, req.cert_type), None)]), critical=False)
        .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(req.urls.crl)],
            relative_name=None, reasons=None, crl_issuer=None)]), critical=False)
        .add_extension(x509.AuthorityInformationAccess([
            x509.AccessDescription(x509.AuthorityInformationAccessOID.OCSP,
                                   x509.UniformResourceIdentifier(req.urls.ocsp)),
            x509.AccessDescription(x509.AuthorityInformationAccessOID.CA_ISSUERS,
                                   x509.UniformResourceIdentifier(req.urls.ca_issuers)),
        ]), critical=False)
    )
    for ext in key_identifiers(req.public_key, issuer_cert):
        builder = builder.add_extension(ext, critical=False)
    if req.identify_data is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.OtherName(IDENTIFY_DATA_OID, req.identify_data)]), critical=False)
    return builder
