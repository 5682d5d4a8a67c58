"""Registering a certificate from a second CA hierarchy when only its root is trusted: the
intermediate comes in the upload, from `trust add --as intermediate`, or (when the operator
allows it) from the caIssuers URL, served here from 127.0.0.1. NPKI-like certificates:
critical certificatePolicies and keyUsage, an authorityKeyIdentifier naming issuer and serial."""
import io
import os
import threading
import zipfile
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509.oid import NameOID

from app import load_config
from models import RegisteredCertificate
from pki import npki
from pki.profile import IDENTIFY_DATA_OID
from services import ca_issuers, registration, settings, trust
from services.errors import DomainError
from tests.conftest import text, verify_by_sms

PW = "Second!bank42x"
RRN = "9001011234567"
CLIENT = "10.0.0.8"
POLICY = x509.CertificatePolicies([x509.PolicyInformation(
    x509.ObjectIdentifier("1.2.410.200005.1.1.4"), ["http://127.0.0.1/cps.html"])])


@pytest.fixture(scope="module")
def keys():
    return [rsa.generate_private_key(65537, 2048) for _ in range(4)]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "KR"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SecondSign"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "AccreditedCA"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make(subject: x509.Name, key, issuer=None, issuer_key=None, *, ca=True, start=-30, days=3000,
         key_cert_sign=True, extensions=()):
    """A certificate as KISA's profile has them; self-signed when no issuer is given."""
    issuer_name = issuer.subject if issuer else subject
    now = datetime.now(UTC)
    usage = (x509.KeyUsage(False, False, False, False, False, key_cert_sign, True, False, False)
             if ca else x509.KeyUsage(True, True, False, False, False, False, False, False, False))
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now + timedelta(days=start))
               .not_valid_after(now + timedelta(days=start + days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(usage, critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False))
    if issuer:
        builder = builder.add_extension(POLICY, critical=True).add_extension(
            x509.AuthorityKeyIdentifier(
                x509.SubjectKeyIdentifier.from_public_key(issuer_key.public_key()).digest,
                [x509.DirectoryName(issuer.issuer)], issuer.serial_number), critical=False)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


class Hierarchy:
    """A second bank's root, its issuing CA, and customers' certificates from that CA."""

    def __init__(self, keys, cn="SecondSign Root CA"):
        self.keys = keys
        self.root = make(_name(cn), keys[0])
        self.middle = make(_name("SecondSign Class 3"), keys[1], self.root, keys[0])

    def issue(self, ca_issuers_url=None):
        """(certificate, randomNum) for keys[2], with a VID for RRN."""
        random_num = os.urandom(20)
        identify = npki.identify_data("홍길동", npki.compute_vid(RRN, random_num))
        extensions = [x509.SubjectAlternativeName([x509.OtherName(IDENTIFY_DATA_OID, identify)])]
        if ca_issuers_url:
            extensions.append(x509.AuthorityInformationAccess([x509.AccessDescription(
                x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier(ca_issuers_url))]))
        subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "KR"),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SecondSign"),
                             x509.NameAttribute(NameOID.COMMON_NAME, "홍길동()0002")])
        return make(subject, self.keys[2], self.middle, self.keys[1], ca=False, start=-1,
                    days=365, extensions=extensions), random_num

    def npki_zip(self, cert, random_num, *chain) -> bytes:
        """The NPKI folder as a zip, with `chain` beside it as the bank's CA certificates."""
        out = io.BytesIO(npki.npki_zip(cert, npki.encrypt_private_key(self.keys[2], PW, random_num),
                                       "SecondSign"))
        with zipfile.ZipFile(out, "a") as zf:
            for number, ca in enumerate(chain):
                zf.writestr(f"NPKI/SecondSign/CA/ca{number}.der", ca.public_bytes(Encoding.DER))
        return out.getvalue()


def cli(app, *args):
    return app.test_cli_runner().invoke(args=["trust", *args])


def pem_file(app, cert, name) -> str:
    path = f"{app.instance_path}/{name}.pem"
    with open(path, "wb") as handle:
        handle.write(cert.public_bytes(Encoding.PEM))
    return path


@pytest.fixture
def second(app, keys):
    """The second bank, of which only the root is trusted."""
    bank = Hierarchy(keys)
    result = cli(app, "add", pem_file(app, bank.root, "second-root"))
    assert result.exit_code == 0, result.output
    return bank


def register(customer, uploads):
    return registration.register(customer, uploads, PW, RRN, CLIENT)


def refusal(customer, uploads) -> str:
    with pytest.raises(DomainError) as error:
        register(customer, uploads)
    assert error.value.field == "files" and error.value.status == 400
    return error.value.code


# -- the intermediate in the upload, or from the operator ------------------------------------

def test_only_the_root_trusted_and_the_intermediate_in_the_upload_registers(demo, second, keys):
    cert, random_num = second.issue()
    row = register(demo["person"], [("NPKI.zip", second.npki_zip(cert, random_num, second.middle))])
    assert bytes(row.der) == cert.public_bytes(Encoding.DER)
    # The same as loose files: signCert.der, signPri.key and the CA certificate.
    other, random_num = second.issue()
    uploads = [("signCert.der", other.public_bytes(Encoding.DER)),
               ("signPri.key", npki.encrypt_private_key(keys[2], PW, random_num)),
               ("SecondSign Class 3.cer", second.middle.public_bytes(Encoding.DER))]
    assert register(demo["person"], uploads).serial == f"{other.serial_number:040x}"


def test_an_intermediate_added_with_trust_add_lets_the_bare_npki_files_register(app, demo,
                                                                               second):
    middle = pem_file(app, second.middle, "second-class3")
    # Anchors are roots only; and a root is no intermediate.
    as_root = cli(app, "add", middle)
    assert as_root.exit_code != 0 and "SecondSign Root CA" in as_root.output
    as_middle = cli(app, "add", pem_file(app, second.root, "again"), "--as", "intermediate")
    assert as_middle.exit_code != 0 and "Traceback" not in as_middle.output
    added = cli(app, "add", middle, "--as", "intermediate")
    assert added.exit_code == 0 and "intermediate CN=SecondSign Class 3" in added.output
    assert trust.anchors() == [second.root] and trust.intermediates() == [second.middle]
    listed = cli(app, "list").output
    assert "root         CN=SecondSign Root CA" in listed
    assert "intermediate CN=SecondSign Class 3" in listed
    cert, random_num = second.issue()
    assert register(demo["person"], [("NPKI.zip", second.npki_zip(cert, random_num))]).id


def test_without_the_intermediate_the_refusal_asks_for_the_whole_folder(app, web, demo, second):
    cert, random_num = second.issue()
    uploads = [("NPKI.zip", second.npki_zip(cert, random_num))]
    assert refusal(demo["person"], uploads) == "register_intermediate_missing"
    verify_by_sms(web, demo["person"], start="/register/files")
    for language, words in (("en", "including the CA certificate"), ("ko", "CA 인증서")):
        web.client.set_cookie("lang", language)
        page = web.post("/register/files", {"files": [(io.BytesIO(uploads[0][1]), "NPKI.zip")],
                                            "password": PW, "rrn": RRN},
                        content_type="multipart/form-data")
        assert page.status_code == 400 and 'id="files-error"' in page.get_data(as_text=True)
        assert "NPKI" in text(page) and words in text(page)
    assert RegisteredCertificate.select().count() == 0


def test_every_link_of_the_path_is_checked(demo, second, keys):
    now = datetime.now(UTC)
    cert, random_num = second.issue()
    assert trust.path(cert, [second.middle], now) == [cert, second.middle, second.root]

    def untrusted(middle, at=now):
        with pytest.raises(trust.NoPath) as no_path:
            trust.path(cert, [middle], at)
        return not no_path.value.issuer_missing

    name, root, key = second.middle.subject, second.root, keys[1]
    assert untrusted(make(name, key, root, keys[0], start=-900, days=800))       # expired
    assert untrusted(make(name, key, root, keys[0], ca=False))                   # not a CA
    assert untrusted(make(name, key, root, keys[0], key_cert_sign=False))        # cannot sign
    assert untrusted(make(name, key, root, keys[3]))                     # not the root's key
    assert untrusted(second.middle, at=now + timedelta(days=400))       # the customer's expired
    # A whole chain, up to a root nobody trusted: untrusted, not "missing".
    stranger = Hierarchy(keys, cn="Stranger Root CA")
    stranger_cert, random_num = stranger.issue()
    uploads = [("NPKI.zip", stranger.npki_zip(stranger_cert, random_num, stranger.middle,
                                              stranger.root))]
    assert refusal(demo["person"], uploads) == "register_untrusted"


# -- the intermediate from the caIssuers URL -------------------------------------------------

@pytest.fixture
def ca_server(keys):
    """An HTTP server on 127.0.0.1 publishing what `ca_server.bodies` holds per path; it
    records each request path."""
    bodies, seen = {}, []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            status, body = bodies.get(self.path, (404, b""))
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "/ca.der")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.bodies, server.seen = bodies, seen
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _published(cert, form):
    return {"der": cert.public_bytes(Encoding.DER), "pem": cert.public_bytes(Encoding.PEM),
            "p7c": pkcs7.serialize_certificates([cert], Encoding.DER)}[form]


@pytest.mark.parametrize("form", ["der", "pem", "p7c"])
def test_with_fetching_allowed_the_intermediate_comes_from_ca_issuers(demo, second, ca_server,
                                                                      monkeypatch, form):
    monkeypatch.setattr(settings.current(), "fetch_intermediates", "private")
    ca_server.bodies[f"/class3.{form}"] = (200, _published(second.middle, form))
    cert, random_num = second.issue(f"{ca_server.url}/class3.{form}")
    assert register(demo["person"], [("NPKI.zip", second.npki_zip(cert, random_num))]).id
    assert ca_server.seen == [f"/class3.{form}"]


def test_fetching_is_off_unless_the_operator_turns_it_on(tmp_path, demo, second, ca_server):
    assert settings.current().fetch_intermediates == ""
    ca_server.bodies["/class3.der"] = (200, _published(second.middle, "der"))
    cert, random_num = second.issue(f"{ca_server.url}/class3.der")
    uploads = [("NPKI.zip", second.npki_zip(cert, random_num))]
    assert refusal(demo["person"], uploads) == "register_intermediate_missing"
    assert ca_server.seen == []
    config = load_config({"CERTCENTER_INSTANCE": str(tmp_path / "other"),
                          "CERTCENTER_FETCH_INTERMEDIATES": "1"})
    assert config["FETCH_INTERMEDIATES"] == "public"


def test_fetching_asks_no_private_address_unless_allowed(demo, second, ca_server, monkeypatch):
    """A customer's file cannot aim the server at the bank's own network: with fetching on for
    public addresses, a caIssuers URL on 127.0.0.1 is not requested."""
    monkeypatch.setattr(settings.current(), "fetch_intermediates", "public")
    ca_server.bodies["/class3.der"] = (200, _published(second.middle, "der"))
    cert, random_num = second.issue(f"{ca_server.url}/class3.der")
    uploads = [("NPKI.zip", second.npki_zip(cert, random_num))]
    assert refusal(demo["person"], uploads) == "register_intermediate_missing"
    assert ca_server.seen == []


def test_a_url_that_gives_the_wrong_certificate_is_asked_once(demo, second, keys, ca_server,
                                                             monkeypatch):
    monkeypatch.setattr(settings.current(), "fetch_intermediates", "private")
    ca_server.bodies["/class3.der"] = (200, _published(Hierarchy(keys, "Stranger Root CA").root,
                                                       "der"))
    cert, random_num = second.issue(f"{ca_server.url}/class3.der")
    uploads = [("NPKI.zip", second.npki_zip(cert, random_num))]
    assert refusal(demo["person"], uploads) == "register_intermediate_missing"
    assert ca_server.seen == ["/class3.der"]


def test_a_fetch_follows_no_redirect_and_takes_nothing_large(second, ca_server, monkeypatch):
    monkeypatch.setattr(settings.current(), "fetch_intermediates", "private")
    big = second.middle.public_bytes(Encoding.PEM) + b"\n" * (ca_issuers.MAX_BYTES + 1)
    ca_server.bodies.update({"/moved": (302, b""), "/big.pem": (200, big),
                             "/ca.der": (200, _published(second.middle, "der"))})
    for path in ("/moved", "/big.pem", "/missing"):
        cert, _ = second.issue(ca_server.url + path)
        assert ca_issuers.fetch(cert) == []
    assert ca_server.seen == ["/moved", "/big.pem", "/missing"]
    # https, ldap and malformed URLs are not followed at all.
    for url in ("https://127.0.0.1/ca.der", "ldap://127.0.0.1/cn=ca", "http://[::1/ca.der",
                "http://127.0.0.1:99999/ca.der", "http:///ca.der"):
        assert ca_issuers.urls(second.issue(url)[0]) == [], url
