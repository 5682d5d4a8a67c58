"""A throwaway CMP server for the interop tests: the standard library's HTTP server in a thread,
answering with pki.cmp and issuing with `cryptography` directly. It keeps only what one test
needs (pairs of reference and code, certificates waiting for certConf, revoked serials); the
rules of who may do what belong to the services layer, not here."""

import datetime as dt
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pki import ca, cmp, serials
from pki.cmp import PbmParameters

CONTENT_TYPE = "application/pkixcmp"                           # RFC 6712 3.4


REF, CODE = "12345678", "ABCD-EFGH-JKLM"


def pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def pem(*certs) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def openssl_cmp(server, folder, *args, expect_ok=True) -> str:
    """Run `openssl cmp` against `server` in `folder`; its output (stdout and stderr)."""
    run = subprocess.run(["openssl", "cmp", "-server", server.url, "-path", "cmp", "-batch",
                          "-msg_timeout", "20", *args], cwd=folder, capture_output=True, text=True,
                         timeout=60)
    assert (run.returncode == 0) == expect_ok, run.stdout + run.stderr
    return run.stdout + run.stderr


@pytest.fixture(scope="session")
def cmp_signer_pair(live_ca):
    """(certificate, key) of a CMP signer under the live CA."""
    return cmp_signer(live_ca, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))


def cmp_signer(keys, now: dt.datetime, public_key=None):
    """A CMP signer certificate from the issuing CA for `public_key`, or for a new file key;
    returns (certificate, new key or None)."""
    return ca.create_signer("cmp", "CertCenter", keys.issuing_cert, keys.issuing_key, now,
                            public_key=public_key)


def _builder(subject: x509.Name, issuer: x509.Certificate, public_key, now: dt.datetime, days: int):
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.subject)
            .public_key(public_key).serial_number(serials.random_serial())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),
                           critical=False))


class CmpServer:
    """Answers CMP over HTTP on 127.0.0.1 (a free port) until closed."""

    def __init__(self, keys, signer_cert, signer_key, implicit_confirm: bool = True):
        self.secrets: dict[bytes, bytes] = {REF.encode(): CODE.encode()}    # reference -> code
        self.keys, self.signer_cert, self.signer_key = keys, signer_cert, signer_key
        self.implicit_confirm = implicit_confirm
        self.pending: dict[bytes, x509.Certificate] = {}  # transactionID -> waiting for certConf
        self.confirmed: list[x509.Certificate] = []
        self.revoked: dict[int, x509.ReasonFlags | None] = {}
        self.seen: list[str] = []                        # body types received, in order
        self.exchanges: list[tuple[bytes, bytes]] = []   # (request, answer) DER, in order
        self.refusals: list[cmp.CmpError] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = server.answer(body)
                server.exchanges.append((body, answer))
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()

    def _signed(self, reply) -> bytes:
        return cmp.protect_with_signature(reply, self.signer_key, self.signer_cert,
                                          chain=[self.keys.issuing_cert])

    def answer(self, der: bytes) -> bytes:
        try:
            request = cmp.parse_request(der)
            self.seen.append(request.body_type)
            protect = self._authenticate(request)
            return protect(self._reply(request))
        except cmp.CmpError as exc:
            self.refusals.append(exc)
            return self._signed(cmp.error_reply(exc.header, exc.fail_info, exc.code))

    def _authenticate(self, request: cmp.Request):
        """How to protect the answer, once the request's own protection has been checked."""
        if isinstance(request.protection, PbmParameters):
            secret = self.secrets.get(request.header.sender_kid or b"")
            if secret is None:
                raise cmp.CmpError("cmp_unknown_reference", "notAuthorized", header=request.header)
            cmp.verify_pbm(request, secret)
            return lambda reply: cmp.protect_with_pbm(reply, secret, self.keys.issuing_cert.subject,
                                                      request.header.sender_kid)
        if request.protection is None or not request.extra_certs:
            raise cmp.CmpError("cmp_unprotected", "wrongIntegrity", header=request.header)
        # RFC 9483 3.3: the first extraCert is the certificate that protects the message.
        client_cert = request.extra_certs[0]
        try:
            client_cert.verify_directly_issued_by(self.keys.issuing_cert)
        except (ValueError, TypeError, InvalidSignature):
            raise cmp.CmpError("cmp_not_ours", "signerNotTrusted", header=request.header) from None
        cmp.verify_signature(request, client_cert)
        self.client_cert = client_cert
        return self._signed

    def _issue(self, request: cmp.Request) -> x509.Certificate:
        wanted = request.certificate_request
        subject = wanted.subject or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cmp test")])
        now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        builder = (_builder(subject, self.keys.issuing_cert, wanted.public_key, now, days=365)
                   .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        return ca.sign_certificate(builder, self.keys.issuing_key)

    def _reply(self, request: cmp.Request):
        kind = request.body_type
        if kind in ("ir", "cr", "p10cr", "kur"):
            if kind == "kur" and request.certificate_request.old_cert_serial != self.client_cert.serial_number:
                return cmp.rejection_reply(request, {"badCertId"}, "that is not the certificate you hold")
            cert = self._issue(request)
            reply = cmp.certificate_reply(
                request, cert, chain=[self.keys.issuing_cert],
                ca_pubs=[self.keys.root_cert] if kind == "ir" else (),
                implicit_confirm=self.implicit_confirm)
            if self.implicit_confirm and request.header.implicit_confirm:
                self.confirmed.append(cert)
            else:
                self.pending[request.header.transaction_id] = cert
            return reply
        if kind == "certConf":
            cert = self.pending.pop(request.header.transaction_id)
            assert [cmp.confirms(c, cert) for c in request.confirmations] == [True]
            self.confirmed.append(cert)
            return cmp.confirm_reply(request)
        if kind == "rr":
            revocation = request.revocation
            if revocation.issuer != self.keys.issuing_cert.subject \
                    or revocation.serial != self.client_cert.serial_number:
                return cmp.rejection_reply(request, {"badCertId"}, "not a certificate of yours")
            self.revoked[revocation.serial] = revocation.reason
            return cmp.revocation_reply(request)
        if kind == "genm":
            return cmp.genp_reply(request, ca_certs=[self.keys.issuing_cert, self.keys.root_cert],
                                  root_cert=self.keys.root_cert)
        return cmp.rejection_reply(request, {"badRequest"}, f"{kind} is not answered here")

