"""The last two steps that issue and renew share: the confirm button on check your answers,
which signs and delivers once per press, and the done page with the single-use download links
(templates/issue/done.html)."""
from collections.abc import Callable

from flask import Response, session, url_for

from models import Certificate, Customer
from pki.profile import CERT_TYPES
from services import secrets
from services.errors import DomainError
from services.issuance import Issued
from views import FlowAnswers, go, page, reverify_unless_fresh


def confirm(answers: FlowAnswers, form, check_page: Callable[..., Response],
            act: Callable[..., Issued], *, new_key: bool) -> Response:
    """The check-your-answers page of the flow `answers` keeps ("issue" or "renew"), and
    what pressing its confirm button does.

    `check_page(error=None)` renders the page. A press needs a verification younger than 10
    minutes (else it verifies again and comes back). With `new_key`, the password waits
    sealed in the session: a seal that no longer opens asks for the password again (the
    flow's password page). Then `act(password=, idn=, once=)` signs and delivers, `once`
    naming this flow's press: a second press of the same button goes to the done page; a
    rule that says no shows the page again with its message. Done: the flow's answers are
    forgotten and its done page shows the links."""
    if not form.validate_on_submit():
        return check_page()
    flow = answers.key
    again = reverify_unless_fresh(flow + ".check")
    if again is not None:
        return again
    password = answers.opened("password") if new_key else None
    if new_key and password is None:
        return go(flow + ".password")
    idn = (secrets.decrypt("session-idn", session.get("idn", "")) or b"").decode()
    try:
        issued = act(password=password, idn=idn, once=f"{flow}:{answers.get()['flow']}")
    except DomainError as error:
        if error.code == "already_done":
            return go(flow + ".done")       # a second press of the same confirm button
        return check_page(error)
    session.pop(flow, None)
    session["done"] = {"flow": flow, "serial": issued.certificate.serial,
                       "replaced": issued.replaced.serial if issued.replaced else None,
                       "links": [(link.kind, link.token, link.filename, link.size)
                                 for link in issued.links]}
    return go(flow + ".done")


def done(customer: Customer, flow: str) -> Response:
    """The done page of `flow`, with the links its confirm press left in the session; without
    them (already left, or another flow's), My certificates."""
    finished = session.get("done") or {}
    mine = Certificate.customer == customer
    certificate = finished.get("flow") == flow and Certificate.get_or_none(
        (Certificate.serial == finished["serial"]) & mine)
    if not certificate:
        return go("mycerts.index")
    replaced = finished["replaced"] and Certificate.get_or_none(
        (Certificate.serial == finished["replaced"]) & mine)
    links = [{"kind": kind, "filename": name, "size": size,
              "url": url_for("downloads.take", token=token)}
             for kind, token, name, size in finished["links"]]
    action = "renew" if flow == "renew" else "reissue" if replaced else "issue"
    return page("issue/done.html", certificate=certificate, links=links, action=action,
                old=replaced, cert_type=CERT_TYPES[certificate.cert_type])
