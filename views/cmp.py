"""`POST /cmp`: CMP over HTTP (RFC 6712) for customers who enrol, renew and revoke with their
own client (services.cmp). Not a form: no session, no CSRF token; the message protects itself
(a PBM under the authorisation code, or the holder's signature)."""
from flask import Blueprint, Response, request

from pki.cmp import MAX_REQUEST_BYTES
from services import cmp
from views.messages import message_for

bp = Blueprint("cmp", __name__)


@bp.post("/cmp")
def enrol():
    if request.mimetype != cmp.CONTENT_TYPE:
        return Response(f"Send a PKIMessage as {cmp.CONTENT_TYPE} (RFC 6712).\n", status=415,
                        mimetype="text/plain")
    if (request.content_length or 0) > MAX_REQUEST_BYTES:
        return Response("A PKIMessage of at most 64 KB.\n", status=413, mimetype="text/plain")
    answer = cmp.answer(request.get_data(cache=False), message_for, request.remote_addr or "?")
    return Response(answer, mimetype=cmp.CONTENT_TYPE, headers={"Cache-Control": "no-store"})
