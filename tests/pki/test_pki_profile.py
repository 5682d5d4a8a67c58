"""The end-entity profile: type table, validity, and every field of an issued certificate; pre-issuance lint."""

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, NameOID

from pki import ca, lint, npki, profile
from pki.errors import PkiError

UTC = dt.UTC


def test_cert_types_follow_the_design_table():
    rows = [(t.id, t.policy_suffix, t.ou, t.fee_won, t.needs_approval, t.holder)
            for t in profile.CERT_TYPES.values()]
    assert rows == [
        ("personal-banking", "1.1.4", "personal4IB", 0, False, "person"),
        ("personal-general", "1.1.1", "personal", 4400, False, "person"),
        ("business-banking", "1.1.2", "corporation4IB", 4400, True, "business"),
        ("business-general", "1.1.5", "corporation4EC", 110000, True, "business"),
    ]
    assert profile.CERT_TYPES["personal-banking"].name_ko == "개인 은행/신용카드/보험용"


def test_policy_oid_and_urls():
    t = profile.CERT_TYPES["business-general"]
    assert profile.policy_oid("1.2.3", t).dotted_string == "1.2.3.1.1.5"
    urls = profile.urls_for("https://cc.example.kr/")
    assert urls == profile.Urls("https://cc.example.kr/pki/issuing.crl", "https://cc.example.kr/ocsp",
                                "https://cc.example.kr/pki/issuing.crt",
                                "https://cc.example.kr/pki/root.crl", "https://cc.example.kr/pki/root.crt")


def test_default_arc_components_fit_28_bits():
    arcs = [int(a) for a in profile.DEFAULT_POLICY_ARC.split(".")]
    assert arcs[:2] == [2, 25] and all(a < 2**28 for a in arcs)


@pytest.mark.parametrize("start, end", [
    # 05:00 UTC is 14:00 KST the same day.
    (dt.datetime(2026, 3, 2, 5, 0, tzinfo=UTC), dt.datetime(2027, 3, 2, 14, 59, 59, tzinfo=UTC)),
    # 20:00 UTC on 1 March is already 2 March in Seoul.
    (dt.datetime(2026, 3, 1, 20, 0, tzinfo=UTC), dt.datetime(2027, 3, 2, 14, 59, 59, tzinfo=UTC)),
    # 29 February maps to 28 February, never past one year.
    (dt.datetime(2028, 2, 29, 1, 0, tzinfo=UTC), dt.datetime(2029, 2, 28, 14, 59, 59, tzinfo=UTC)),
])
def test_validity_end(start, end):
    got = profile.validity_end(start)
    assert got == end and got.utcoffset() == dt.timedelta(0)
    assert got.astimezone(profile.KST).time() == dt.time(23, 59, 59)


@pytest.fixture
def issued(ca_keys, make_request, ee_key):
    vid = npki.compute_vid("9001011234567", bytes(range(20)))
    req = make_request(identify_data=npki.identify_data("홍길동", vid))
    builder = profile.end_entity_builder(req, ca_keys.issuing_cert)
    return req, ca.sign_certificate(builder, ca_keys.issuing_key)


def test_subject_order_and_string_types(issued):
    _, cert = issued
    attrs = [(a.oid, a.value, a._type) for rdn in cert.subject.rdns for a in rdn]
    assert attrs == [
        (NameOID.COUNTRY_NAME, "KR", _ASN1Type.PrintableString),
        (NameOID.ORGANIZATION_NAME, "CertCenter", _ASN1Type.UTF8String),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "personal4IB", _ASN1Type.UTF8String),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "CCBANK", _ASN1Type.UTF8String),
        (NameOID.COMMON_NAME, "홍길동()0012345678901234", _ASN1Type.UTF8String),
    ]


def test_extensions(issued, ca_keys):
    req, cert = issued
    ext = cert.extensions
    assert cert.version == x509.Version.v3
    assert cert.issuer == ca_keys.issuing_cert.subject
    assert cert.serial_number == req.serial

    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
    assert not (ku.value.key_encipherment or ku.value.key_cert_sign or ku.value.crl_sign)

    policies = ext.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == [profile.DEFAULT_POLICY_ARC + ".1.1.4"]

    ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuer_ski = ca_keys.issuing_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == issuer_ski.digest

    dp = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in dp[0].full_name] == ["https://cc.example.kr/pki/issuing.crl"]
    aia = {(d.access_method, d.access_location.value)
           for d in ext.get_extension_for_class(x509.AuthorityInformationAccess).value}
    assert aia == {(AuthorityInformationAccessOID.OCSP, "https://cc.example.kr/ocsp"),
                   (AuthorityInformationAccessOID.CA_ISSUERS, "https://cc.example.kr/pki/issuing.crt")}

    (other,) = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    assert other.type_id.dotted_string == "1.2.410.200004.10.1.1"
    assert other.value == req.identify_data

    with pytest.raises(x509.ExtensionNotFound):
        ext.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS)


def test_validity_ends_2359_kst(issued):
    _, cert = issued
    assert cert.not_valid_before_utc == dt.datetime(2025, 3, 2, 5, 0, tzinfo=UTC)
    end = cert.not_valid_after_utc.astimezone(profile.KST)
    assert (end.date(), end.time()) == (dt.date(2026, 3, 2), dt.time(23, 59, 59))


def test_no_san_without_identify_data(ca_keys, make_request):
    cert = ca.sign_certificate(profile.end_entity_builder(make_request(), ca_keys.issuing_cert),
                               ca_keys.issuing_key)
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


@pytest.mark.parametrize("with_identify_data", [False, True])
@pytest.mark.parametrize("type_id", list(profile.CERT_TYPES))
def test_end_entity_builder_lints_clean(ca_keys, make_request, type_id, with_identify_data):
    data = npki.identify_data("홍길동", bytes(32)) if with_identify_data else None
    req = make_request(cert_type=profile.CERT_TYPES[type_id], identify_data=data)
    builder = profile.end_entity_builder(req, ca_keys.issuing_cert)
    assert lint.lint_builder(builder) == []
    lint.require_clean(builder)


def test_broken_builder_is_refused(ca_keys, make_request):
    good = ca.sign_certificate(profile.end_entity_builder(make_request(), ca_keys.issuing_cert),
                               ca_keys.issuing_key)
    # The same certificate with keyUsage marked non-critical, which RFC 5280 says it SHOULD be.
    extensions = [x509.Extension(e.oid, False, e.value) if isinstance(e.value, x509.KeyUsage) else e
                  for e in good.extensions]
    broken = x509.CertificateBuilder(
        issuer_name=good.issuer, subject_name=good.subject, public_key=good.public_key(),
        serial_number=good.serial_number, not_valid_before=good.not_valid_before_utc,
        not_valid_after=good.not_valid_after_utc, extensions=extensions)
    findings = lint.lint_builder(broken)
    assert len(findings) == 1 and "pkix.key_usage_extension_not_critical (WARNING)" in findings[0]
    with pytest.raises(PkiError) as e:
        lint.require_clean(broken)
    assert e.value.code == "lint_failed" and e.value.detail == findings


def test_uuid_policy_arc_is_refused_by_lint(ca_keys, make_request):
    # Why DEFAULT_POLICY_ARC is not a full 2.25.<uuid>: pkilint (like Go < 1.22) cannot decode it.
    req = make_request(policy_arc="2.25.47314665908438833677934091502198317585")
    findings = lint.lint_builder(profile.end_entity_builder(req, ca_keys.issuing_cert))
    assert any("itu.invalid_asn1_syntax" in f for f in findings)
