"""Enrolling with `openssl cmp` (OpenSSL 3.0) against the app on a live port (issue 13): ir with
a reference number and authorisation code, kur with the certificate inside its renewal window,
rr, genm, and what is refused: a spent or voided pair, a renewal too early, a client that never
confirms. The key is made here, as the customer's program would; the server never sees it."""
import html
import random
import re
import shlex
import subprocess
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pyasn1.codec.der import decoder, encoder
from pyasn1_alt_modules import rfc4211, rfc9810

from models import AuditEvent, Certificate, CmpTransaction
from services import ca_store, clock, enrolment_codes, jobs, limits, renewal
from tests.conftest import move_clock, text
from tests.test_web_support import agree_and_choose, h1, verify_person_by_sms


def pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture
def folder(tmp_path, app):
    ca = ca_store.load_ca()
    (tmp_path / "root.pem").write_bytes(ca.root_cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "issuing.pem").write_bytes(
        ca.issuing_cert.public_bytes(serialization.Encoding.PEM))
    return tmp_path


def openssl_cmp(live, folder, *args, ok=True) -> str:
    run = subprocess.run(["openssl", "cmp", "-server", urlsplit(live).netloc, "-path", "cmp",
                          "-batch", "-msg_timeout", "30", *args], cwd=folder,
                         capture_output=True, text=True, timeout=90)
    assert (run.returncode == 0) == ok, run.stdout + run.stderr
    return run.stdout + run.stderr


def ir(live, folder, given, key, *extra, ok=True, code=None) -> str:
    (folder / "new.key").write_bytes(pem_key(key))
    return openssl_cmp(live, folder, "-cmd", "ir", "-ref", given.reference,
                       "-secret", "pass:" + (code or given.code), "-newkey", "new.key",
                       "-certout", "new.pem",
                       "-trusted", "root.pem", "-untrusted", "issuing.pem", *extra, ok=ok)


def verify(folder, name="new.pem") -> x509.Certificate:
    run = subprocess.run(["openssl", "verify", "-CAfile", "root.pem", "-untrusted",
                          "issuing.pem", name], cwd=folder, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return x509.load_pem_x509_certificate((folder / name).read_bytes())


def ocsp_says(live, folder, name) -> str:
    run = subprocess.run(["openssl", "ocsp", "-issuer", "issuing.pem", "-cert", name,
                          "-url", live + "/ocsp", "-CAfile", "root.pem", "-no_nonce",
                          "-validity_period", "86400"],        # the test's clock may run ahead
                         cwd=folder, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout.split(f"{name}: ", 1)[1].split()[0]


def give(demo, type_id="personal-banking"):
    return enrolment_codes.give(demo["person"], type_id, "customer:P0000001")


@pytest.mark.parametrize("key", [rsa.generate_private_key(65537, 2048),
                                 ec.generate_private_key(ec.SECP256R1())],
                         ids=["rsa-2048", "p-256"])
def test_ir_with_a_reference_number_and_code_gets_a_certificate_of_our_profile(
        live, folder, demo, key):
    given = give(demo)
    ir(live, folder, given, key)
    cert = verify(folder)
    assert cert.public_key() == key.public_key()
    subject = cert.subject.rfc4514_string()
    assert re.fullmatch(r"CN=홍길동\(\)0011\d{18},OU=CCBANK,OU=personal4IB,O=CertCenter,C=KR",
                        subject), subject
    record = Certificate.get(Certificate.serial == f"{cert.serial_number:040x}")
    assert record.status == "valid" and record.cert_type == "personal-banking"
    assert not record.key_generated_here
    assert AuditEvent.get(AuditEvent.action == "certificate.issue").actor == \
        "cmp:" + given.reference
    assert ocsp_says(live, folder, "new.pem") == "good"

    # The pair was for one certificate.
    again = ir(live, folder, given, ec.generate_private_key(ec.SECP256R1()), ok=False)
    assert "notAuthorized" in again and "유효하지 않은 참조번호입니다" in again
    assert Certificate.select().count() == 1


def test_a_second_pair_reissues_and_the_first_certificate_is_revoked(live, folder, demo):
    ir(live, folder, give(demo), ec.generate_private_key(ec.SECP256R1()))
    (folder / "new.pem").rename(folder / "first.pem")
    ir(live, folder, give(demo), ec.generate_private_key(ec.SECP256R1()))
    verify(folder)
    assert ocsp_says(live, folder, "first.pem") == "revoked"
    assert ocsp_says(live, folder, "new.pem") == "good"
    assert Certificate.select().where(Certificate.status == "valid").count() == 1


def test_five_wrong_codes_void_the_pair(live, folder, demo):
    given = give(demo)
    key = ec.generate_private_key(ec.SECP256R1())
    for _ in range(enrolment_codes.MAX_WRONG):
        out = ir(live, folder, given, key, code="WRONGCODE234", ok=False)
        assert "badMessageCheck" in out and "참조번호와 인가코드를 확인해 주세요" in out
    out = ir(live, folder, given, key, ok=False)          # now even the right code
    assert "notAuthorized" in out
    assert Certificate.select().count() == 0


def test_a_client_that_never_confirms_leaves_no_valid_certificate(live, folder, demo):
    ir(live, folder, give(demo), ec.generate_private_key(ec.SECP256R1()), "-disable_confirm")
    sent = x509.load_pem_x509_certificate((folder / "new.pem").read_bytes())
    serial = f"{sent.serial_number:040x}"
    assert Certificate.get_or_none(Certificate.serial == serial) is None
    assert ocsp_says(live, folder, "new.pem") == "unknown"
    move_clock(minutes=11)
    jobs.run()
    record = Certificate.get(Certificate.serial == serial)
    assert record.status == "revoked" and record.revocation_reason == "cessation-of-operation"
    assert ocsp_says(live, folder, "new.pem") == "revoked"
    assert CmpTransaction.get().ended_at is None        # never confirmed, never delivered


@pytest.fixture
def enrolled(live, folder, demo):
    """A certificate from ir: cur.pem, its key cur.key."""
    key = rsa.generate_private_key(65537, 2048)
    ir(live, folder, give(demo), key)
    (folder / "new.pem").rename(folder / "cur.pem")
    (folder / "new.key").rename(folder / "cur.key")
    return Certificate.get(Certificate.status == "valid")


def kur(live, folder, key, ok=True) -> str:
    (folder / "next.key").write_bytes(pem_key(key))
    return openssl_cmp(live, folder, "-cmd", "kur", "-cert", "cur.pem", "-key", "cur.key",
                       "-newkey", "next.key", "-certout", "next.pem", "-trusted", "root.pem",
                       ok=ok)


def test_kur_renews_inside_the_window_and_is_refused_before_it(live, folder, enrolled):
    early = kur(live, folder, ec.generate_private_key(ec.SECP256R1()), ok=False)
    assert "rejection" in early and "갱신할 수 있습니다" in early, early
    clock.advance(renewal.window_opens(enrolled) - clock.now())
    move_clock(days=1)
    key = ec.generate_private_key(ec.SECP256R1())
    kur(live, folder, key)
    successor = x509.load_pem_x509_certificate((folder / "next.pem").read_bytes())
    current = x509.load_pem_x509_certificate((folder / "cur.pem").read_bytes())
    assert successor.public_key() == key.public_key() and successor.subject == current.subject
    new = Certificate.get(Certificate.serial == f"{successor.serial_number:040x}")
    assert new.not_after == renewal.renewal_end(enrolled)
    old = Certificate.get_by_id(enrolled.id)
    assert old.status == "valid" and old.replaced_by_id == new.id
    assert AuditEvent.get(AuditEvent.action == "certificate.renew").actor == \
        "cmp:" + enrolled.serial


def test_rr_revokes_and_ocsp_says_so(live, folder, enrolled):
    no_reason = openssl_cmp(live, folder, "-cmd", "rr", "-cert", "cur.pem", "-key", "cur.key",
                            "-oldcert", "cur.pem", "-trusted", "root.pem", "-untrusted",
                            "issuing.pem", ok=False)
    assert "폐기 사유를 알려 주세요" in no_reason
    openssl_cmp(live, folder, "-cmd", "rr", "-cert", "cur.pem", "-key", "cur.key", "-oldcert",
                "cur.pem", "-revreason", "1", "-trusted", "root.pem")
    assert ocsp_says(live, folder, "cur.pem") == "revoked"
    record = Certificate.get_by_id(enrolled.id)
    assert record.status == "revoked" and record.revocation_reason == "key-compromise"


def test_genm_returns_the_ca_certificates(live, folder, demo):
    given = give(demo)
    out = openssl_cmp(live, folder, "-cmd", "genm", "-infotype", "caCerts", "-ref",
                      given.reference, "-secret", f"pass:{given.code}")
    assert "genp contains ITAV of type: id-it-caCerts" in out
    out = openssl_cmp(live, folder, "-cmd", "genm", "-infotype", "caCerts",
                      "-unprotected_requests", "-subject", "/CN=anyone", "-trusted",
                      "root.pem")
    assert "genp contains ITAV of type: id-it-caCerts" in out
    assert enrolment_codes.open_pair(given.reference)        # asking spent nothing


def test_what_is_not_a_pkimessage_gets_a_clear_refusal(app, demo):
    client = app.test_client()
    wrong_type = client.post("/cmp", data=b"hello", content_type="text/plain")
    assert wrong_type.status_code == 415 and b"application/pkixcmp" in wrong_type.data
    garbage = client.post("/cmp", data=b"\x30\x03\x02\x01\x05", content_type="application/pkixcmp")
    assert garbage.status_code == 200 and garbage.mimetype == "application/pkixcmp"
    assert "CMP 메시지를 읽을 수 없습니다".encode() in garbage.data


def _reply_of(response) -> tuple[str, set]:
    """(body type, PKIFailureInfo bit names) of an answer from /cmp."""
    assert response.status_code == 200 and response.mimetype == "application/pkixcmp"
    message = decoder.decode(response.data, asn1Spec=rfc9810.PKIMessage())[0]
    body = message["body"].getName()
    content = message["body"].getComponent()
    info = content["pKIStatusInfo"] if body == "error" else content["response"][0]["status"]
    bits = info["failInfo"]
    return body, {name for name, position in rfc9810.PKIFailureInfo.namedValues.items()
                  if position < len(bits) and bits[position]}


def test_damaged_and_hostile_messages_get_cmp_refusals(live, folder, demo, app):
    given = give(demo)
    ir(live, folder, given, ec.generate_private_key(ec.SECP256R1()), "-reqout", "ir.der")
    sent = (folder / "ir.der").read_bytes()
    client = app.test_client()

    def post(data):
        return client.post("/cmp", data=data, content_type="application/pkixcmp")

    damaged = [sent[:n] for n in range(0, len(sent), max(1, len(sent) // 60))]
    generator = random.Random(13)
    for _ in range(60):
        flipped = bytearray(sent)
        flipped[generator.randrange(len(sent))] ^= 1 << generator.randrange(8)
        damaged.append(bytes(flipped))
    damaged += [generator.randbytes(generator.randrange(1, 400)) for _ in range(30)]
    for data in damaged:
        response = post(data)
        if response.status_code != 200:
            assert response.status_code in (400, 413, 415), response.status_code
            continue
        body, _bits = _reply_of(response)
        assert body in ("error", "ip"), body          # ip: a rejection of the enrolment
    assert Certificate.select().count() == 1          # the one openssl enrolled

    # A PBM whose iteration count would keep a CPU busy for hours is refused unread.
    message = decoder.decode(sent, asn1Spec=rfc9810.PKIMessage())[0]
    algorithm = message["header"]["protectionAlg"]
    parameters = decoder.decode(bytes(algorithm["parameters"]), asn1Spec=rfc4211.PBMParameter())[0]
    parameters["iterationCount"] = 2**31 - 1
    algorithm["parameters"] = encoder.encode(parameters)
    body, bits = _reply_of(post(encoder.encode(message)))
    assert body == "error" and "badAlg" in bits

    oversized = post(b"\x30\x84" + b"\x00" * 70_000)
    assert oversized.status_code == 413


def test_a_verified_customer_gets_a_pair_on_the_page_and_its_commands_work(
        web, demo, live, folder):
    verify_person_by_sms(web, demo["person"])
    agree_and_choose(web)
    intro = web.post("/issue/key", {"key": "program"})
    assert intro.request.path == "/issue/program" and h1(intro) == "내 프로그램으로 발급받기"
    assert "10분 동안 한 번만" in text(intro)
    shown = web.post("/issue/program", {})
    assert h1(shown) == "참조번호와 인가코드"
    page = text(shown)
    reference = re.search(r"참조번호 (\d{8})", page).group(1)
    code = re.search(r"인가코드 (\w{4} \w{4} \w{4})", page).group(1)
    assert shown.headers["Cache-Control"] == "no-store"
    commands = html.unescape(re.search(r'<pre class="command"[^>]*><code>(.*?)</code></pre>',
                                       shown.get_data(as_text=True), re.S).group(1))
    assert f"-ref {reference} -secret pass:{code.replace(' ', '')}" in commands
    # As the customer types them, against the address this test serves the app on.
    for line in commands.splitlines():
        line = line.replace("-server 127.0.0.1:5000", "-server " + urlsplit(live).netloc)
        run = subprocess.run(shlex.split(line), cwd=folder, capture_output=True, text=True,
                             timeout=90)
        assert run.returncode == 0, line + "\n" + run.stdout + run.stderr
    verify(folder, "cert.pem")
    root = x509.load_pem_x509_certificate((folder / "root.pem").read_bytes())
    assert root == ca_store.load_ca().root_cert
    assert Certificate.get().customer_id == demo["person"].id
    # Back on the page: asking again gives a new pair, and the spent one stays spent.
    again = text(web.post("/issue/program", {}))
    assert re.search(r"참조번호 (\d{8})", again).group(1) != reference


def test_the_grouped_code_as_shown_works_too(live, folder, demo):
    given = give(demo)
    ir(live, folder, given, ec.generate_private_key(ec.SECP256R1()),
       code=" ".join(given.code_groups))
    verify(folder)


@pytest.mark.parametrize("command", ["cr", "p10cr"])
def test_cr_and_p10cr_enrol_like_ir(live, folder, demo, command):
    given = give(demo)
    key = ec.generate_private_key(ec.SECP256R1())
    (folder / "new.key").write_bytes(pem_key(key))
    if command == "p10cr":
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name.from_rfc4514_string("CN=mine"))
               .sign(key, hashes.SHA256()))
        (folder / "req.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        what = ["-csr", "req.csr"]
    else:
        what = ["-newkey", "new.key"]
    openssl_cmp(live, folder, "-cmd", command, "-ref", given.reference, "-secret",
                "pass:" + given.code, *what, "-certout", "new.pem")
    cert = verify(folder)
    assert cert.public_key() == key.public_key() and "CN=mine" not in cert.subject.rfc4514_string()


def test_guessing_references_is_limited_per_client(live, folder, demo, app):
    given = give(demo)
    ir(live, folder, given, ec.generate_private_key(ec.SECP256R1()), "-reqout", "guess.der",
       code="WRONGCODE234", ok=False)
    guess = (folder / "guess.der").read_bytes()
    client = app.test_client()

    def post(address):
        response = client.post("/cmp", data=guess, content_type="application/pkixcmp",
                               environ_base={"REMOTE_ADDR": address})
        return _reply_of(response)[1], response.data

    for _ in range(limits.CLIENT_TRIES - 1):      # openssl's own try counted one already
        bits, data = post("127.0.0.1")
        assert "badMessageCheck" in bits or "notAuthorized" in bits
    bits, data = post("127.0.0.1")
    assert "notAuthorized" in bits and "이 접속 환경에서 잘못 입력한 횟수가 너무 많습니다".encode() in data
    bits, data = post("10.1.2.3")                  # another client is not blocked
    assert "이 접속 환경에서".encode() not in data


def test_a_weak_key_is_refused_with_what_to_use_instead(live, folder, demo):
    given = give(demo)
    refused = ir(live, folder, given, rsa.generate_private_key(65537, 1024), ok=False)
    assert "badCertTemplate" in refused and "2048비트 이상의 RSA 키" in refused, refused
    assert enrolment_codes.open_pair(given.reference)          # nothing was spent
    assert Certificate.select().count() == 0
