"""The issuing CA's CRL: entries and reasons, extensions, signature, OpenSSL, pkilint, bad input and size."""

import datetime as dt
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pki import crl, files, lint, serials, signer
from pki.errors import PkiError

NOW = dt.datetime(2025, 3, 2, 5, 0, tzinfo=dt.UTC)  # as in conftest.py

THIS_UPDATE = NOW + dt.timedelta(hours=1)
NEXT_UPDATE = THIS_UPDATE + dt.timedelta(days=7)
REVOKED_AT = NOW + dt.timedelta(minutes=30)
COMPROMISED_AT = NOW - dt.timedelta(days=2)


def _entries() -> list[crl.RevokedEntry]:
    """One entry per reason, with an invalidity date on the key compromise."""
    return [
        crl.RevokedEntry(serials.random_serial(), REVOKED_AT + dt.timedelta(seconds=i), reason,
                         COMPROMISED_AT if reason == "key-compromise" else None)
        for i, reason in enumerate(crl.REASONS)
    ]


def _build(keys, entries, number=7):
    return crl.build_crl(keys.issuing_cert, keys.issuing_key, entries, number, THIS_UPDATE, NEXT_UPDATE)


def _reparse(c: x509.CertificateRevocationList) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(c.public_bytes(serialization.Encoding.DER))


def test_reasons_cover_the_names_services_use():
    assert set(crl.REASONS) == {
        "key-compromise", "affiliation-changed", "superseded", "cessation-of-operation",
        "privilege-withdrawn", "certificate-hold", "unspecified"}
    assert all(isinstance(flag, x509.ReasonFlags) for flag in crl.REASONS.values())


def test_every_reason_comes_back(ca_keys):
    entries = _entries()
    parsed = _reparse(_build(ca_keys, entries))
    assert len(parsed) == len(entries)
    for entry in entries:
        revoked = parsed.get_revoked_certificate_by_serial_number(entry.serial)
        assert revoked is not None, entry
        assert revoked.revocation_date_utc == entry.revoked_at
        exts = revoked.extensions
        if entry.reason == "unspecified":
            # RFC 5280 5.3.1: absent rather than unspecified(0).
            assert len(exts) == 0
            continue
        reason = exts.get_extension_for_class(x509.CRLReason)
        assert not reason.critical
        assert reason.value.reason is crl.REASONS[entry.reason]
        if entry.reason == "key-compromise":
            invalidity = exts.get_extension_for_class(x509.InvalidityDate)
            assert not invalidity.critical
            assert invalidity.value.invalidity_date_utc == COMPROMISED_AT
        else:
            with pytest.raises(x509.ExtensionNotFound):
                exts.get_extension_for_class(x509.InvalidityDate)


def test_hold_is_certificate_hold(ca_keys):
    serial = serials.random_serial()
    parsed = _reparse(_build(ca_keys, [crl.RevokedEntry(serial, REVOKED_AT, "certificate-hold")]))
    reason = parsed.get_revoked_certificate_by_serial_number(serial).extensions.get_extension_for_class(x509.CRLReason)
    assert reason.value.reason is x509.ReasonFlags.certificate_hold


def test_key_compromise_without_invalidity_date(ca_keys):
    serial = serials.random_serial()
    parsed = _reparse(_build(ca_keys, [crl.RevokedEntry(serial, REVOKED_AT, "key-compromise")]))
    exts = parsed.get_revoked_certificate_by_serial_number(serial).extensions
    assert [e.oid for e in exts] == [x509.CRLReason.oid]


def test_header_extensions_and_signature(ca_keys):
    c = _reparse(_build(ca_keys, _entries(), number=4242))
    assert c.issuer == ca_keys.issuing_cert.subject
    assert c.last_update_utc == THIS_UPDATE
    assert c.next_update_utc == NEXT_UPDATE
    assert isinstance(c.signature_hash_algorithm, hashes.SHA256)
    number = c.extensions.get_extension_for_class(x509.CRLNumber)
    assert not number.critical and number.value.crl_number == 4242
    aki = c.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    ski = ca_keys.issuing_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert not aki.critical and aki.value.key_identifier == ski.digest
    assert c.is_signature_valid(ca_keys.issuing_cert.public_key())
    assert not c.is_signature_valid(ca_keys.root_cert.public_key())


def test_aware_non_utc_times_are_converted(ca_keys):
    kst = dt.timezone(dt.timedelta(hours=9))
    serial = serials.random_serial()
    c = crl.build_crl(ca_keys.issuing_cert, ca_keys.issuing_key,
                      [crl.RevokedEntry(serial, REVOKED_AT.astimezone(kst), "superseded")], 1,
                      THIS_UPDATE.astimezone(kst), NEXT_UPDATE.astimezone(kst))
    assert c.last_update_utc == THIS_UPDATE
    assert c.get_revoked_certificate_by_serial_number(serial).revocation_date_utc == REVOKED_AT


def test_empty_crl(ca_keys):
    c = _reparse(_build(ca_keys, []))
    assert len(c) == 0
    assert c.is_signature_valid(ca_keys.issuing_cert.public_key())


def test_empty_crl_lints_clean(ca_keys):
    assert lint.lint_crl(_build(ca_keys, [])) == []


def test_crl_with_every_reason_lints_clean(ca_keys):
    assert lint.lint_crl(_build(ca_keys, _entries())) == []


def test_lint_crl_reports_findings(ca_keys):
    # Proof that the linter looks: a CRL without CRL number and AKI, built around build_crl.
    bare = (x509.CertificateRevocationListBuilder()
            .issuer_name(ca_keys.issuing_cert.subject).last_update(THIS_UPDATE).next_update(NEXT_UPDATE))
    bare = x509.load_der_x509_crl(ca_keys.issuing_key.crl(
        bare.sign(signer.throwaway_key(), hashes.SHA256()).tbs_certlist_bytes))
    findings = lint.lint_crl(bare)
    assert any("crl_number_missing" in f for f in findings), findings
    assert any("authority_key_identifier" in f for f in findings), findings


def test_lint_crl_refuses_a_non_crl():
    with pytest.raises(PkiError) as err:
        lint.lint_crl(b"not a crl")
    assert err.value.code == "lint_unreadable"


def test_openssl_reads_the_crl(ca_keys, tmp_path):
    entries = _entries()
    (tmp_path / "crl.der").write_bytes(_build(ca_keys, entries).public_bytes(serialization.Encoding.DER))
    run = subprocess.run(["openssl", "crl", "-inform", "DER", "-noout", "-text", "-in", "crl.der"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "Version 2 (0x1)" in out
    assert "X509v3 CRL Number" in out and "7" in out
    assert "X509v3 Authority Key Identifier" in out
    assert "sha256WithRSAEncryption" in out
    for entry in entries:
        assert f"Serial Number: {entry.serial:X}" in out
    for text in ("Key Compromise", "Affiliation Changed", "Superseded", "Cessation Of Operation",
                 "Privilege Withdrawn", "Certificate Hold", "Invalidity Date"):
        assert text in out, text
    assert "Unspecified" not in out


@pytest.mark.parametrize("reason", ["key-compromise", "certificate-hold", "unspecified"])
def test_openssl_verify_uses_the_crl(live_ca, issue_ee, tmp_path, reason):
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    good, revoked = issue_ee(live_ca, now), issue_ee(live_ca, now)
    c = crl.build_crl(live_ca.issuing_cert, live_ca.issuing_key,
                      [crl.RevokedEntry(revoked.serial_number, now, reason)], 1,
                      now, now + dt.timedelta(days=1))
    (tmp_path / "root.pem").write_bytes(files.cert_pem(live_ca.root_cert))
    (tmp_path / "issuing.pem").write_bytes(files.cert_pem(live_ca.issuing_cert))
    (tmp_path / "crl.pem").write_bytes(c.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "good.pem").write_bytes(files.cert_pem(good))
    (tmp_path / "revoked.pem").write_bytes(files.cert_pem(revoked))

    def verify(name):
        return subprocess.run(
            ["openssl", "verify", "-crl_check", "-CAfile", "root.pem", "-untrusted", "issuing.pem",
             "-CRLfile", "crl.pem", name], cwd=tmp_path, capture_output=True, text=True)

    ok = verify("good.pem")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip() == "good.pem: OK"
    bad = verify("revoked.pem")
    assert bad.returncode != 0
    assert "certificate revoked" in bad.stdout + bad.stderr


@pytest.mark.parametrize("entries, detail", [
    ([crl.RevokedEntry(0, REVOKED_AT, "superseded")], "serial"),
    ([crl.RevokedEntry(-1, REVOKED_AT, "superseded")], "serial"),
    ([crl.RevokedEntry(1 << 159, REVOKED_AT, "superseded")], "serial"),
    ([crl.RevokedEntry("12", REVOKED_AT, "superseded")], "serial"),
    ([crl.RevokedEntry(5, REVOKED_AT, "superseded"), crl.RevokedEntry(5, REVOKED_AT, "superseded")], "twice"),
    ([crl.RevokedEntry(5, REVOKED_AT.replace(tzinfo=None), "superseded")], "aware"),
    ([crl.RevokedEntry(5, "2025-03-02", "superseded")], "aware"),
    ([crl.RevokedEntry(5, dt.datetime(1949, 12, 31, tzinfo=dt.UTC), "superseded")], "1950"),
    ([crl.RevokedEntry(5, REVOKED_AT, "lost")], "reason"),
    ([crl.RevokedEntry(5, REVOKED_AT, None)], "reason"),
    ([crl.RevokedEntry(5, REVOKED_AT, "superseded", COMPROMISED_AT)], "invalidity"),
    ([crl.RevokedEntry(5, REVOKED_AT, "key-compromise", COMPROMISED_AT.replace(tzinfo=None))], "aware"),
    ([(5, REVOKED_AT, "superseded")], "RevokedEntry"),
])
def test_bad_entries_are_refused(ca_keys, entries, detail):
    with pytest.raises(PkiError) as err:
        _build(ca_keys, entries)
    assert err.value.code == "crl_invalid"
    assert detail in str(err.value.detail)


def test_bad_headers_are_refused(ca_keys):
    keys = ca_keys
    cases = [
        lambda: crl.build_crl(keys.issuing_cert, keys.issuing_key, [], 1, THIS_UPDATE, THIS_UPDATE),
        lambda: crl.build_crl(keys.issuing_cert, keys.issuing_key, [], 1, NEXT_UPDATE, THIS_UPDATE),
        lambda: crl.build_crl(keys.issuing_cert, keys.issuing_key, [], 1, THIS_UPDATE.replace(tzinfo=None),
                              NEXT_UPDATE),
        lambda: crl.build_crl(keys.issuing_cert, keys.issuing_key, [], -1, THIS_UPDATE, NEXT_UPDATE),
        lambda: crl.build_crl(keys.issuing_cert, keys.issuing_key, [], 1 << 159, THIS_UPDATE, NEXT_UPDATE),
        lambda: crl.build_crl(keys.issuing_cert, keys.issuing_key, [], 1.0, THIS_UPDATE, NEXT_UPDATE),
        lambda: crl.build_crl(keys.issuing_cert, keys.root_key, [], 1, THIS_UPDATE, NEXT_UPDATE),
        lambda: crl.build_crl(keys.issuing_cert, None, [], 1, THIS_UPDATE, NEXT_UPDATE),
        lambda: crl.build_crl(b"cert", keys.issuing_key, [], 1, THIS_UPDATE, NEXT_UPDATE),
        lambda: crl.build_crl(keys.issuing_cert, keys.issuing_key, None, 1, THIS_UPDATE, NEXT_UPDATE),
    ]
    for case in cases:
        with pytest.raises(PkiError) as err:
            case()
        assert err.value.code == "crl_invalid"


def test_issuer_without_ski_is_refused(ca_keys):
    no_ski = ca_keys.root_key.sign_certificate(
        x509.CertificateBuilder().subject_name(ca_keys.issuing_cert.subject)
        .issuer_name(ca_keys.root_cert.subject).public_key(ca_keys.issuing_key.public_key())
        .serial_number(1).not_valid_before(NOW).not_valid_after(NOW + dt.timedelta(days=1)))
    with pytest.raises(PkiError) as err:
        crl.build_crl(no_ski, ca_keys.issuing_key, [], 1, THIS_UPDATE, NEXT_UPDATE)
    assert err.value.code == "crl_invalid"


_reason = st.sampled_from(sorted(crl.REASONS))
_when = st.datetimes(min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(9999, 1, 1),
                     timezones=st.just(dt.UTC)).map(lambda d: d.replace(microsecond=0))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, (1 << 159) - 1), _when, _reason, _when), max_size=20,
                unique_by=lambda t: t[0]))
def test_any_valid_entries_round_trip(ca_keys, rows):
    entries = [crl.RevokedEntry(s, at, reason, inv if reason == "key-compromise" else None)
               for s, at, reason, inv in rows]
    parsed = _reparse(_build(ca_keys, entries))
    assert [(r.serial_number, r.revocation_date_utc) for r in parsed] == \
        [(e.serial, e.revoked_at) for e in entries]


def _as_cryptography_builds_it(keys, entries, number, partition_url=None) -> bytes:
    """The same CRL through cryptography's own builders, signed by the same key."""
    revoked = []
    for e in entries:
        extensions = [] if e.reason == "unspecified" else [
            x509.Extension(x509.CRLReason.oid, False, x509.CRLReason(crl.REASONS[e.reason]))]
        if e.invalidity_date is not None:
            extensions.append(x509.Extension(x509.InvalidityDate.oid, False,
                                             x509.InvalidityDate(e.invalidity_date)))
        revoked.append(x509.RevokedCertificateBuilder(e.serial, e.revoked_at, extensions).build())
    ski = keys.issuing_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    extensions = [x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
                  x509.Extension(x509.AuthorityKeyIdentifier.oid, False,
                                 x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski))]
    if partition_url:
        extensions.append(x509.Extension(x509.IssuingDistributionPoint.oid, True,
                                         x509.IssuingDistributionPoint(
                                             [x509.UniformResourceIdentifier(partition_url)], None,
                                             True, False, None, False, False)))
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=keys.issuing_cert.subject, last_update=THIS_UPDATE, next_update=NEXT_UPDATE,
        extensions=extensions, revoked_certificates=revoked)
    return keys.issuing_key.crl(builder.sign(signer.throwaway_key(), hashes.SHA256())
                                .tbs_certlist_bytes)


_any_time = st.datetimes(min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(9999, 1, 1),
                         timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=9))]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, (1 << 159) - 1), _any_time, _reason, _any_time),
                max_size=30, unique_by=lambda t: t[0]),
       st.sampled_from([None, "http://127.0.0.1:5000/pki/crl/3.crl"]))
def test_our_der_is_exactly_what_cryptography_encodes(ca_keys, rows, partition_url):
    # Serials of every length (high bit set or not), times on both sides of 2050, with
    # microseconds and in other time zones, every reason: byte for byte the same CRL.
    entries = [crl.RevokedEntry(s, at, reason, inv if reason == "key-compromise" else None)
               for s, at, reason, inv in rows]
    ours = crl.build_crl_der(ca_keys.issuing_cert, ca_keys.issuing_key, entries, 9, THIS_UPDATE,
                             NEXT_UPDATE, partition_url)
    assert ours == _as_cryptography_builds_it(ca_keys, entries, 9, partition_url)


def test_hundred_thousand_entries(ca_keys):
    # No time assertion (timed tests flake on busy machines); run with -s to see the figure.
    reasons = list(crl.REASONS)
    entries = [crl.RevokedEntry(serials.random_serial(), REVOKED_AT, reasons[i % len(reasons)],
                                COMPROMISED_AT if reasons[i % len(reasons)] == "key-compromise" else None)
               for i in range(100_000)]
    start = time.perf_counter()
    c = _build(ca_keys, entries)
    elapsed = time.perf_counter() - start
    der = c.public_bytes(serialization.Encoding.DER)
    print(f"\n100,000-entry CRL: built and signed in {elapsed:.3f} s, {len(der):,} bytes DER")
    parsed = x509.load_der_x509_crl(der)
    assert len(parsed) == 100_000
    assert parsed.is_signature_valid(ca_keys.issuing_cert.public_key())
    assert parsed.get_revoked_certificate_by_serial_number(entries[-1].serial) is not None
