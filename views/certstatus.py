"""Revoke (폐기), suspend (효력정지) and resume (효력회복): identity -> which certificate ->
(revoke: why) -> check your answers -> a fresh second factor -> done. No certificate file is
needed: a lost file is the usual reason to revoke. One blueprint serves the three, which
differ only in words and in which certificates they apply to."""
from flask import Blueprint, abort, request, session
from flask_babel import lazy_gettext as _l

from models import Certificate
from pki.profile import CERT_TYPES
from services import clock, flows, issuance, secrets, status
from services.errors import DomainError
from views import error_list, go, page, verified
from views.forms import ConfirmForm, ReasonForm, SerialForm
from views.second_factor import SecondFactorStep

bp = Blueprint("certstatus", __name__, url_prefix="/<any(revoke, suspend, resume):action>")

ACTIONS = {
    "revoke": {"from": ("valid", "suspended"), "change": status.revoke_certificate,
               "title": _l("Revoke a certificate"),
               "choose": _l("Which certificate do you want to revoke?"),
               "button": _l("Revoke the certificate"),
               "done": _l("Your certificate is revoked"),
               "none": _l("You have no certificate that can be revoked."),
               "along": _l("Your certificate with serial %(serial)s, valid until %(date)s, "
                           "is revoked with it: it was renewed into this one or has the "
                           "same key.")},
    "suspend": {"from": ("valid",), "change": status.suspend_certificate,
                "title": _l("Suspend a certificate"),
                "choose": _l("Which certificate do you want to suspend?"),
                "button": _l("Suspend the certificate"),
                "done": _l("Your certificate is suspended"),
                "none": _l("You have no valid certificate to suspend."),
                "along": _l("Your certificate with serial %(serial)s, valid until %(date)s, "
                            "is suspended with it: it was renewed into this one.")},
    "resume": {"from": ("suspended",), "change": status.resume_certificate,
               "title": _l("Resume a suspended certificate"),
               "choose": _l("Which certificate do you want to resume?"),
               "button": _l("Resume the certificate"),
               "done": _l("Your certificate works again"),
               "none": _l("You have no suspended certificate."),
               "along": _l("Your certificate with serial %(serial)s, valid until %(date)s, "
                           "works again with it: it was renewed into this one.")},
}

# The second factor before the change, ended by the action's own button.
STEPS = {action: SecondFactorStep("status_flow", words["button"], "certstatus.code",
                                  "certstatus.code_by_sms")
         for action, words in ACTIONS.items()}

REASON_LABELS = {
    "key-compromise": (_l("Someone else may have my files or password"),
                       _l("For example, a lost USB stick or phone, or a shared computer")),
    "affiliation-changed": (_l("My name or my company's details changed"), None),
    "superseded": (_l("I have a newer certificate that replaces it"), None),
    "cessation-of-operation": (_l("I no longer use it"), None),
}


def _flow(action: str) -> dict:
    flow = session.get("status_flow")
    return flow if flow and flow.get("action") == action else {}


def _context(action: str, **more) -> dict:
    return {"action": action, "words": ACTIONS[action], "types": CERT_TYPES,
            "reasons": REASON_LABELS, **more}


def _eligible(customer, action: str) -> list[Certificate]:
    """The customer's certificates this action applies to. One renewed into another that is
    offered too is not offered on its own: it goes with it (services.status.changes_along)."""
    candidates = [cert for cert in issuance.certificates_of(customer)
                  if cert.status in ACTIONS[action]["from"] and cert.not_after > clock.now()]
    offered = {cert.id for cert in candidates}
    return [cert for cert in candidates if cert.replaced_by_id not in offered]


def _chosen(customer, action: str) -> Certificate | None:
    serial = _flow(action).get("serial")
    if not serial:
        return None
    try:
        return status.find_certificate(serial, customer, actor="customer:" + customer.code)
    except DomainError:
        return None


@bp.get("/")
def start(action):
    return page("certstatus/start.html", **_context(action))


@bp.route("/certificate", methods=["GET", "POST"])
@verified("certstatus.choose")
def choose(customer, action):
    form = SerialForm()
    certificates = _eligible(customer, action)
    if form.validate_on_submit():
        try:
            # Only the customer's own: another serial typed into the form is refused and
            # audited by the service.
            cert = status.find_certificate(form.serial.data, customer,
                                           actor="customer:" + customer.code)
            if cert not in certificates:
                raise DomainError("certificate_not_eligible", field="serial", status=409)
        except DomainError as error:
            return _choose_page(action, form, certificates, error)
        session["status_flow"] = {"action": action, "serial": cert.serial,
                                  "flow": secrets.random_token()}
        return go("certstatus.reason" if action == "revoke" else "certstatus.check",
                  action=action)
    return _choose_page(action, form, certificates)


def _choose_page(action, form, certificates, error=None):
    return page("certstatus/certificate.html", status=error.status if error else None,
                errors=error_list(error, "serial") if error else None, form=form,
                certificates=certificates, **_context(action))


@bp.route("/reason", methods=["GET", "POST"])
@verified("certstatus.choose")
def reason(customer, action):
    if action != "revoke":
        abort(404)
    if _chosen(customer, action) is None:
        return go("certstatus.choose", action=action)
    form = ReasonForm(data={"reason": _flow(action).get("reason")})
    if form.validate_on_submit():
        session["status_flow"] = {**_flow(action), "reason": form.reason.data}
        return go("certstatus.check", action=action)
    return page("certstatus/reason.html", form=form, **_context(action))


@bp.route("/check", methods=["GET", "POST"])
@verified("certstatus.choose")
def check(customer, action):
    cert = _chosen(customer, action)
    if cert is None:
        return go("certstatus.choose", action=action)
    if action == "revoke" and _flow(action).get("reason") not in status.CUSTOMER_REASONS:
        return go("certstatus.reason", action=action)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            STEPS[action].ask(customer)
        except DomainError as error:
            return _check_page(action, form, cert, error)
        return go("certstatus.code", action=action)
    return _check_page(action, form, cert)


def _check_page(action, form, cert, error=None):
    """Check your answers, with what changes along with the certificate."""
    along = status.changes_along(cert, ACTIONS[action]["from"], _flow(action).get("reason"))
    return page("certstatus/check.html", status=error.status if error else None,
                errors=error_list(error) if error else None, form=form, cert=cert,
                flow=_flow(action), along=along, **_context(action))


@bp.route("/code", methods=["GET", "POST"])
@verified("certstatus.choose")
def code(customer, action):
    cert, flow = _chosen(customer, action), _flow(action)
    if cert is None or STEPS[action].method() is None:
        return go("certstatus.choose", action=action)
    if request.method == "POST":
        if flow.get("done"):
            return go("certstatus.done", action=action)      # a second press of the button
        if cert not in _eligible(customer, action):          # renewed or changed meanwhile
            if flows.done("status:" + flow["flow"]):
                return go("certstatus.done", action=action)  # by this flow: a second press
            return _choose_page(action, SerialForm(), _eligible(customer, action),
                                DomainError("status_changed", status=409, field="serial"))
    return STEPS[action].code(customer, lambda: _change(customer, action, cert, flow),
                              action=action)


def _change(customer, action, cert, flow):
    """The second factor was right: revoke, suspend or resume, once for this flow."""
    extra = {"reason": flow["reason"], "reasons": status.CUSTOMER_REASONS} \
        if action == "revoke" else {}
    try:
        ACTIONS[action]["change"](cert, actor="customer:" + customer.code,
                                  once="status:" + flow["flow"], **extra)
    except DomainError as error:
        if error.code != "already_done":
            raise
    else:
        session["status_flow"] = {**flow, "done": clock.now().isoformat()}
    return go("certstatus.done", action=action)


@bp.post("/code/sms")
@verified("certstatus.choose")
def code_by_sms(customer, action):
    """Use a text message instead of the authenticator app, or ask for a new code."""
    if not _flow(action) or STEPS[action].method() is None:
        return go("certstatus.choose", action=action)
    return STEPS[action].send_sms(customer, action=action)


@bp.get("/done")
@verified("mycerts.index")
def done(customer, action):
    flow = _flow(action)
    cert = _chosen(customer, action)
    if cert is None or not flow.get("done"):
        return go("mycerts.index")
    return page("certstatus/done.html", cert=cert, **_context(action))
