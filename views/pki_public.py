"""What relying parties fetch: the CA certificates, the CRL and the OCSP responder, at the
URLs written into every certificate. No session, no CSRF: these are not forms."""
import base64
import binascii
import hashlib
from urllib.parse import unquote

from cryptography.hazmat.primitives.serialization import Encoding
from flask import Blueprint, Response, abort, request
from werkzeug.http import http_date, quote_etag

from pki.ocsp import MAX_REQUEST_BYTES
from services import ca_store, checkpoints, clock, status

bp = Blueprint("pki_public", __name__)

CRL_MAX_AGE = 60              # seconds a relying party's cache may keep a CRL
OCSP_MAX_AGE = 60             # and an OCSP answer (RFC 5019 §6.2: no more than nextUpdate)


def _der_certificate(cert, filename: str) -> Response:
    response = Response(cert.public_bytes(Encoding.DER), mimetype="application/pkix-cert")
    response.headers.set("Content-Disposition", "inline", filename=filename)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.get("/pki/root.crt")
def root_certificate():
    return _der_certificate(ca_store.load_ca().root_cert, "root.crt")


@bp.get("/pki/issuing.crt")
def issuing_certificate():
    return _der_certificate(ca_store.load_ca().issuing_cert, "issuing.crt")


def _max_age(next_update, ceiling: int) -> int:
    return max(0, min(ceiling, int((next_update - clock.now()).total_seconds())))


def _crl_response(der: bytes, this_update, next_update) -> Response:
    response = Response(der, mimetype="application/pkix-crl")
    response.set_etag(hashlib.sha256(der).hexdigest()[:32])
    response.last_modified = clock.aware(this_update)
    response.expires = clock.aware(next_update)
    response.headers["Cache-Control"] = (f"public, max-age={_max_age(next_update, CRL_MAX_AGE)}"
                                         ", must-revalidate")
    return response.make_conditional(request)


@bp.get("/pki/issuing.crl")
def crl():
    """The full CRL, signed again first when a status change is not on it yet: a change to a
    partitioned certificate re-signs only its partition in the request (status.latest_crl)."""
    latest = status.latest_crl()
    return _crl_response(bytes(latest.der), latest.this_update, latest.next_update)


@bp.get("/pki/crl/<int:partition>.crl")
def partition_crl(partition):
    """One partition of the CRL: what certificates issued since partitions name."""
    latest = status.partition_crl(partition)
    if latest is None:
        abort(404)
    return _crl_response(bytes(latest.der), latest.this_update, latest.next_update)


@bp.get("/pki/root.crl")
def root_crl():
    """The root's CRL (ARL), as the last key ceremony signed it."""
    latest = ca_store.root_crl()
    if latest is None:
        return Response("The root CA has published no CRL yet.\n", status=404,
                        mimetype="text/plain")
    return _crl_response(latest.der, latest.this_update, latest.next_update)


@bp.get("/pki/audit-checkpoint")
def audit_checkpoint():
    """The latest signed head of the audit trail, for anyone to keep a copy of: a copy kept
    outside is what shows a trail rewritten with its checkpoints."""
    latest = checkpoints.latest()
    if latest is None:
        return Response("No audit checkpoint has been signed yet.\n", status=404,
                        mimetype="text/plain")
    response = Response(checkpoints.document(latest), mimetype="text/plain")
    response.last_modified = clock.aware(latest.at)
    response.headers["Cache-Control"] = f"public, max-age={CRL_MAX_AGE}"
    return response


def ocsp_headers(answer: status.OcspAnswer, cacheable: bool) -> list[tuple[str, str]]:
    """An OCSP answer's Content-Type and caching headers; views/ocsp_stored.py sends the same."""
    if answer.this_update is not None and cacheable:
        # RFC 5019 §6.2: caching headers from the response's own times.
        caching = [("Last-Modified", http_date(clock.aware(answer.this_update))),
                   ("Expires", http_date(clock.aware(answer.next_update))),
                   ("ETag", quote_etag(hashlib.sha1(answer.der).hexdigest())),
                   ("Cache-Control", f"max-age={_max_age(answer.next_update, OCSP_MAX_AGE)}, "
                                     "public, no-transform, must-revalidate")]
    else:
        caching = [("Cache-Control", "no-store")]
    return [("Content-Type", "application/ocsp-response"), *caching]


def _ocsp_response(der_request: bytes, cacheable: bool) -> Response:
    answer = status.ocsp_answer(der_request)
    return Response(answer.der, headers=ocsp_headers(answer, cacheable))


@bp.post("/ocsp")
def ocsp_post():
    if request.mimetype != "application/ocsp-request":
        return Response("Content-Type must be application/ocsp-request\n", status=415,
                        mimetype="text/plain")
    if (request.content_length or 0) > MAX_REQUEST_BYTES:
        return Response("OCSP request too large\n", status=413, mimetype="text/plain")
    return _ocsp_response(request.get_data(cache=False)[:MAX_REQUEST_BYTES + 1], cacheable=False)


@bp.get("/ocsp/<path:encoded>")
def ocsp_get(encoded):
    """RFC 5019 §5: the DER request, base64 and then URL-encoded, in the path."""
    return _ocsp_response(ocsp_get_request(encoded), cacheable=True)


def ocsp_get_request(encoded: str) -> bytes:
    """The DER request in a GET's path after /ocsp/; b"" (malformedRequest) if unreadable."""
    try:
        return base64.b64decode(unquote(encoded), validate=True)
    except (binascii.Error, ValueError):
        return b""
