"""The lean path for `/ocsp`: a WSGI middleware in front of Flask that answers a question
about one of our certificates with its pre-signed answer (services.status), without
routing, sessions, templates or a signature. Whatever it cannot answer from storage goes
on to Flask untouched, where views/pki_public.py answers it as before: a nonce, an unknown
serial, another issuer, the root's certificates, a malformed or oversized request, another
content type or method."""
import io

from models import db
from pki import ocsp as pki_ocsp
from pki.errors import PkiError
from services import status
from services.errors import DomainError
from views.pki_public import ocsp_get_request, ocsp_headers

GET_PREFIX = "/ocsp/"


class StoredOcsp:
    def __init__(self, app, headers: list[tuple[str, str]]):
        self.app = app
        self.headers = headers          # what app.py adds to every response, pages or not

    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        der = None
        if method == "POST" and path == "/ocsp":
            der = self._body(environ)
        elif method == "GET" and path.startswith(GET_PREFIX):
            der = ocsp_get_request(path[len(GET_PREFIX):])
        answer = self._stored(der) if der else None
        if answer is None:
            return self.app(environ, start_response)
        start_response("200 OK", [*ocsp_headers(answer, cacheable=method == "GET"),
                                  ("Content-Length", str(len(answer.der))), *self.headers])
        return [answer.der]

    @staticmethod
    def _body(environ) -> bytes | None:
        """The request body, when it is an OCSP request of a declared, acceptable length.
        What was read is put back for Flask, in case the answer is not stored."""
        if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != \
                "application/ocsp-request":
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        if not 0 < length <= pki_ocsp.MAX_REQUEST_BYTES:
            return None
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        return body

    @staticmethod
    def _stored(der: bytes) -> status.OcspAnswer | None:
        try:
            question = pki_ocsp.parse_request(der)
        except PkiError:
            return None
        if question.nonce is not None:
            return None                 # answered with a fresh signature that echoes it
        db.connect(reuse_if_open=True)  # the worker thread's, as app.py's before_request
        try:
            return status.stored_ocsp_answer(question)
        except DomainError:
            return None                 # e.g. no CA: Flask answers it as it answers errors
