"""The issue and reissue flow (발급/재발급): start -> identity -> terms -> type -> key ->
CSR upload or password -> check your answers -> done, with single-use download links; or, for
the customer's own program, key -> a reference number and authorisation code (CMP).
The flow's answers live in the session; the password only encrypted."""
import base64

from cryptography.hazmat.primitives.serialization import Encoding
from flask import Blueprint, request, session

from models import Customer
from pki.csr import MAX_CSR_BYTES
from pki.profile import CERT_TYPES
from services import cmp, issuance, secrets
from services.errors import DomainError
from services.passwords import check_new_password
from views import FlowAnswers, confirm, error_list, go, page, verified
from views.forms import ConfirmForm, CsrForm, KeyForm, PasswordForm, TermsForm, TypeForm

bp = Blueprint("issue", __name__, url_prefix="/issue")


ANSWERS = FlowAnswers("issue")
_answers, _save = ANSWERS.get, ANSWERS.save


def _ask(template: str, form, errors=None, status=None, **context):
    return page(template, status=status, errors=errors, form=form, answers=_answers(),
                **context)


@bp.get("/")
def start():
    return page("issue/start.html")


@bp.route("/terms", methods=["GET", "POST"])
@verified("issue.terms")
def terms(customer: Customer):
    form = TermsForm()
    if form.validate_on_submit():
        session["issue"] = {"agreed": True, "flow": secrets.random_token()}
        return go("issue.cert_type")
    return _ask("issue/terms.html", form)


def _flow_step(view):
    """Later steps need the terms agreed in this session; else start again."""
    def wrapper(customer, *args, **kwargs):
        if not _answers().get("agreed"):
            return go("issue.terms")
        return view(customer, *args, **kwargs)
    wrapper.__name__ = view.__name__
    return verified("issue.terms")(wrapper)


@bp.route("/type", methods=["GET", "POST"])
@_flow_step
def cert_type(customer: Customer):
    form = TypeForm()
    choices = issuance.types_for(customer)
    plans = issuance.plans_for(customer)
    if not form.is_submitted() and request.args.get("type") in CERT_TYPES:
        form.cert_type.data = request.args["type"]
    if form.validate_on_submit():
        try:
            plan = issuance.plan(customer, form.cert_type.data)
        except DomainError as error:
            return _ask("issue/type.html", form, error_list(error, "cert_type"), choices=choices,
                        plans=plans)
        _save(cert_type=plan.cert_type.id)
        if plan.action == "request":
            return go("issue.approval")
        if plan.action == "waiting":
            return go("issue.waiting")
        return go("issue.key")
    return _ask("issue/type.html", form, choices=choices, plans=plans)


def _type_chosen(view):
    def wrapper(customer, *args, **kwargs):
        if _answers().get("cert_type") not in CERT_TYPES:
            return go("issue.cert_type")
        return view(customer, issuance.plan(customer, _answers()["cert_type"]), *args, **kwargs)
    wrapper.__name__ = view.__name__
    return _flow_step(wrapper)


@bp.route("/request", methods=["GET", "POST"])
@_type_chosen
def approval(customer, plan):
    """Business types: check the request and send it to an operator."""
    form = ConfirmForm()
    if plan.action != "request":
        return go("issue.key" if plan.action in ("issue", "reissue") else "issue.waiting")
    if form.validate_on_submit():
        try:
            issuance.request_certificate(customer, plan.cert_type.id)
        except DomainError as error:
            return _ask("issue/request.html", form, error_list(error), plan=plan,
                        status=error.status)
        return go("issue.waiting")
    return _ask("issue/request.html", form, plan=plan)


@bp.get("/waiting")
@_type_chosen
def waiting(customer, plan):
    return page("issue/waiting.html", plan=plan, request=issuance.open_request(
        customer, plan.cert_type.id))


@bp.route("/key", methods=["GET", "POST"])
@_type_chosen
def key(customer, plan):
    if plan.action not in ("issue", "reissue"):
        return go("issue.cert_type")
    form = KeyForm(data={"key": _answers().get("key")} if request.method == "GET" else None)
    if form.validate_on_submit():
        if form.key.data != _answers().get("key"):
            # A changed choice drops the other way's answer, so that check-your-answers
            # can only show, and confirm can only issue, what was chosen last.
            _save(key=form.key.data, csr=None, password=None)
        return go(KEY_STEPS[form.key.data])
    return _ask("issue/key.html", form, plan=plan)


KEY_STEPS = {"generate": "issue.password", "csr": "issue.csr", "program": "issue.program"}


@bp.route("/program", methods=["GET", "POST"])
@_type_chosen
def program(customer, plan):
    """The customer's own program (CMP) makes the key: a reference number and authorisation
    code for it, shown once."""
    if plan.action not in ("issue", "reissue"):
        return go("issue.cert_type")
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            authorized = cmp.authorize(customer, plan.cert_type.id, "customer:" + customer.code)
        except DomainError as error:
            return _ask("issue/program.html", form, error_list(error), plan=plan,
                        status=error.status)
        return page("issue/program_pair.html", plan=plan, given=authorized.given,
                    commands=authorized.commands, customer=customer)
    return _ask("issue/program.html", form, plan=plan)


@bp.route("/csr", methods=["GET", "POST"])
@_type_chosen
def csr(customer, plan):
    form = CsrForm()
    if form.validate_on_submit():
        try:
            parsed = issuance.read_csr(form.csr.data.read(MAX_CSR_BYTES + 1))
        except DomainError as error:
            return _ask("issue/csr.html", form, error_list(error, "csr"), plan=plan)
        _save(key="csr", csr=base64.b64encode(parsed.public_bytes(Encoding.DER)).decode(),
              password=None)
        return go("issue.check")
    return _ask("issue/csr.html", form, plan=plan)


@bp.route("/password", methods=["GET", "POST"])
@_type_chosen
def password(customer, plan):
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            check_new_password(form.password.data, form.password_again.data)
        except DomainError as error:
            return _ask("issue/password.html", form, error_list(error, "password"), plan=plan)
        _save(key="generate", csr=None,
              password=secrets.encrypt("session-password", form.password.data.encode()))
        return go("issue.check")
    return _ask("issue/password.html", form, plan=plan)


@bp.route("/check", methods=["GET", "POST"])
@_type_chosen
def check(customer, plan):
    answers = _answers()
    if plan.action not in ("issue", "reissue") or answers.get("key") not in ("generate", "csr"):
        return go("issue.key")
    if answers["key"] == "generate" and not answers.get("password"):
        return go("issue.password")
    if answers["key"] == "csr" and not answers.get("csr"):
        return go("issue.csr")
    form = ConfirmForm()

    def check_page(error=None):
        return _ask("issue/check.html", form, error_list(error) if error else None, plan=plan,
                    status=error.status if error else None)

    def issue(password, idn, once):
        return issuance.issue_certificate(
            customer, plan.cert_type.id, idn=idn, actor="customer:" + customer.code,
            password=password, once=once,
            csr_der=base64.b64decode(answers["csr"]) if answers["key"] == "csr" else None)
    return confirm.confirm(ANSWERS, form, check_page, issue,
                           new_key=answers["key"] == "generate")


@bp.get("/done")
@verified("mycerts.index")
def done(customer):
    return confirm.done(customer, "issue")
