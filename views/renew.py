"""The renewal flow (갱신): start -> identity -> certificate login with the certificate to renew
(its files, or a signature) -> [automatic renewal is on: renew now, or keep it] -> a new key or
the same key -> [new key: a password] -> check your answers -> done, with single-use download
links. A certificate that cannot be renewed gets a page that says why and what to do instead.

The proof and the answers live in the session; the opened key and its password only sealed
(services.renewal.seal_held_key), and only until the renewal is confirmed."""
from datetime import datetime

from flask import Blueprint, session, url_for
from flask_babel import gettext as _

from models import Certificate
from pki.profile import CERT_TYPES
from services import clock, renewal, secrets, verification
from services.errors import DomainError
from services.passwords import check_new_password
from views import FlowAnswers, confirm, error_list, go, page, verified
from views.forms import AutomaticChoiceForm, ConfirmForm, PasswordForm, RenewKeyForm
from views.messages import message_for
from views.possession import files_step, signature_step, way_step

bp = Blueprint("renew", __name__, url_prefix="/renew")


ANSWERS = FlowAnswers("renew")
_answers, _save = ANSWERS.get, ANSWERS.save


def _context(cert: Certificate, **more) -> dict:
    return {"cert": cert, "cert_type": CERT_TYPES[cert.cert_type],
            "new_end": renewal.renewal_end(cert), "answers": _answers(), **more}


@bp.get("/")
def start():
    return page("renew/start.html")


@bp.route("/certificate", methods=["GET", "POST"])
@verified("renew.choose")
def choose(customer):
    return way_step("renew", intro=_("Show us the certificate you want to renew: open its "
                                     "files here, or sign a text with its key."))


@bp.route("/certificate/files", methods=["GET", "POST"])
@verified("renew.choose")
def with_files(customer):
    return files_step(customer, "renew", _proved, in_force=False)


@bp.route("/certificate/signature", methods=["GET", "POST"])
@verified("renew.choose")
def with_signature(customer):
    return signature_step(customer, "renew", _proved, in_force=False)


def _proved(record: Certificate, opened, password: str | None):
    """The certificate login succeeded: renew this one, or say why it cannot be."""
    session.pop("challenge", None)
    problem = renewal.refusal(record)
    if problem:
        session.pop("renew", None)
        return page("renew/refused.html", status=problem.status, problem=problem.code,
                    message=message_for(problem), **_context(record))
    held = renewal.seal_held_key(opened, password) if opened is not None else None
    session["renew"] = {"serial": record.serial, "proved_at": clock.now().isoformat(),
                        "flow": secrets.random_token(), "held": held}
    return go("renew.automatic" if record.auto_renew_days else "renew.key")


def _renewing(view):
    """The steps after the certificate login: the proved certificate, while the proof is
    fresh (10 minutes) and the certificate still renewable; else back to the login."""
    def wrapper(customer, *args, **kwargs):
        answers = _answers()
        proved_at = answers.get("proved_at")
        cert = Certificate.get_or_none((Certificate.serial == answers.get("serial", ""))
                                       & (Certificate.customer == customer))
        if cert is None or not verification.is_fresh(datetime.fromisoformat(proved_at)):
            return go("renew.choose")
        problem = renewal.refusal(cert)
        if problem:
            session.pop("renew", None)
            return page("renew/refused.html", status=problem.status, problem=problem.code,
                        message=message_for(problem), **_context(cert))
        return view(customer, cert, *args, **kwargs)
    wrapper.__name__ = view.__name__
    return verified("renew.choose")(wrapper)


@bp.route("/automatic", methods=["GET", "POST"])
@_renewing
def automatic(customer, cert):
    """Automatic renewal is on: renew now and turn it off, or leave it to run."""
    if not cert.auto_renew_days:
        return go("renew.key")
    form = AutomaticChoiceForm(data={"choice": _answers().get("automatic")})
    if form.validate_on_submit():
        if form.choice.data == "keep":
            session.pop("renew", None)
            session["flash"] = "auto_renew_kept"
            return go("mycerts.index")
        _save(automatic="now")
        return go("renew.key")
    return page("renew/automatic.html", form=form,
                **_context(cert, due=renewal.auto_renewal_due(cert)))


def _automatic_answered(cert) -> bool:
    return not cert.auto_renew_days or _answers().get("automatic") == "now"


@bp.route("/key", methods=["GET", "POST"])
@_renewing
def key(customer, cert):
    if not _automatic_answered(cert):
        return go("renew.automatic")
    form = RenewKeyForm(data={"key": _answers().get("key")})
    if form.validate_on_submit():
        if form.key.data == "same":
            _save(key="same", password=None)
            return go("renew.check")
        _save(key="new")
        return go("renew.password")
    return page("renew/key.html", form=form, **_context(cert))


@bp.route("/password", methods=["GET", "POST"])
@_renewing
def password(customer, cert):
    if _answers().get("key") != "new":
        return go("renew.key")
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            check_new_password(form.password.data, form.password_again.data)
        except DomainError as error:
            return page("issue/password.html", errors=error_list(error, "password"),
                        form=form, action_url=url_for("renew.password"))
        _save(password=secrets.encrypt("session-password", form.password.data.encode()))
        return go("renew.check")
    return page("issue/password.html", form=form, action_url=url_for("renew.password"))


@bp.route("/check", methods=["GET", "POST"])
@_renewing
def check(customer, cert):
    answers = _answers()
    if not _automatic_answered(cert) or answers.get("key") not in ("new", "same"):
        return go("renew.key")
    if answers["key"] == "new" and not answers.get("password"):
        return go("renew.password")
    form = ConfirmForm()

    def check_page(error=None):
        return page("renew/check.html", status=error.status if error else None,
                    errors=error_list(error) if error else None, form=form, **_context(cert))

    def renew(password, idn, once):
        if answers["key"] == "same":
            return renewal.renew_certificate(cert, "customer:" + customer.code, once=once,
                                             held=renewal.open_held_key(answers.get("held")))
        return renewal.renew_certificate(cert, "customer:" + customer.code, once=once,
                                         new_password=password, idn=idn)
    return confirm.confirm(ANSWERS, form, check_page, renew, new_key=answers["key"] == "new")


@bp.get("/done")
@verified("mycerts.index")
def done(customer):
    return confirm.done(customer, "renew")
