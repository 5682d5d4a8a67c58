"""The operators' console (/ops): enrolment, login (password, then a code from the
authenticator app), logout and the dashboard. Off unless CERTCENTER_OPS=1, and reachable only
from the networks in CERTCENTER_OPS_ALLOW when that is set.

Operators have their own session cookie (`cc_ops`, Path=/ops, SameSite=Strict), apart from
customers' sessions; services.operators decides whether a session is still good and what its
operator's role may do."""
import ipaddress
from functools import wraps

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    request,
    session,
    stream_with_context,
)
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer

from services import (
    checkpoints,
    clock,
    cmp,
    console,
    four_eyes,
    issuance,
    operators,
    reminders,
    status,
    verification,
)
from services.errors import DomainError
from views import (
    MAX_ID,
    PendingAuthenticator,
    days_left,
    error_list,
    form_errors,
    go,
    page,
)
from views.forms import (
    ApproveForm,
    CodeForm,
    NoteForm,
    OperatorAddForm,
    OperatorEnrolmentForm,
    OperatorLoginForm,
    OperatorRevokeForm,
    RejectForm,
    TypeForm,
)

bp = Blueprint("ops", __name__, url_prefix="/ops")

COOKIE = "cc_ops"
NEW_AUTHENTICATOR = PendingAuthenticator("ops_totp_pending")


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="cc-ops-session")


def _cookie() -> dict:
    try:
        value = _serializer().loads(request.cookies.get(COOKIE, ""))
    except BadSignature:
        return {}
    return value if isinstance(value, dict) else {}


def _keep(value: dict | None) -> None:
    """Set (or, with None, clear) the console cookie on this request's response."""
    g.ops_cookie = value


@bp.after_app_request
def _write_cookie(response):
    if "ops_cookie" in g:
        if g.ops_cookie is None:
            response.delete_cookie(COOKIE, path="/ops")
        else:
            response.set_cookie(COOKIE, _serializer().dumps(g.ops_cookie), path="/ops",
                                secure=True, httponly=True, samesite="Strict")
    return response


@bp.before_request
def _console_allowed():
    if not current_app.config["OPS"]:
        abort(404)
    allowed = current_app.config["OPS_ALLOW"]
    if allowed:
        try:
            client = ipaddress.ip_address(request.remote_addr or "")
        except ValueError:
            abort(403)
        if not any(client in network for network in allowed):
            abort(403)


def _client() -> str:
    return request.remote_addr or "?"


def signed_in(action: str):
    """The view needs an operator whose session holds and whose role may do `action`; it is
    called with the operator. Anyone else goes to the login page."""
    def wrap(view):
        @wraps(view)
        def inner(*args, **kwargs):
            held = _cookie()
            operator = None
            if "id" in held:
                operator = operators.session_operator(operators.Session(
                    held["id"], held.get("started", 0), held.get("seen", 0)))
            if operator is None:
                if "id" in held:
                    _keep(None)
                    session["ops_notice"] = "ended"
                return go("ops.login")
            operators.require(operator, action)
            _keep({**held, "seen": clock.timestamp()})
            g.operator = operator
            return view(operator, *args, **kwargs)
        inner.required_action = action        # for the test that walks every route
        return inner
    return wrap


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = OperatorLoginForm()
    errors = None
    if form.validate_on_submit():
        try:
            operator = operators.check_password(form.name.data, form.password.data, _client())
        except DomainError as error:
            errors = error_list(error, "password")
        else:
            _keep({"pending": operator.id, "at": clock.timestamp()})
            return go("ops.code")
    return page("ops/login.html", form=form, errors=errors, notice=session.pop("ops_notice", None))


@bp.route("/login/code", methods=["GET", "POST"])
def code():
    held = _cookie()
    operator = operators.password_checked(held.get("pending"), held.get("at", 0))
    if operator is None:
        return go("ops.login")
    form = CodeForm()
    errors = None
    if form.validate_on_submit():
        try:
            operators.check_code(operator, form.code.data, _client())
        except DomainError as error:
            errors = error_list(error, "code")
        else:
            now = clock.timestamp()
            _keep({"id": operator.id, "started": now, "seen": now})
            return go("ops.dashboard")
    return page("ops/code.html", form=form, errors=errors)


@bp.post("/logout")
@signed_in("view_dashboard")
def logout(operator):
    operators.log_out(operator)
    _keep(None)
    session["ops_notice"] = "logged_out"
    return go("ops.login")


@bp.route("/enrol/<token>", methods=["GET", "POST"])
def enrol(token):
    """Set a password and an authenticator app in one page, from the one-time link."""
    operator = operators.operator_for_enrolment(token)
    secret = NEW_AUTHENTICATOR.secret()
    form = OperatorEnrolmentForm()
    errors = None
    if form.validate_on_submit():
        try:
            operators.complete_enrolment(token, form.password.data, secret, form.code.data)
        except DomainError as error:
            errors = error_list(error, "password")
        else:
            NEW_AUTHENTICATOR.done()
            session["ops_notice"] = "enrolled"
            return go("ops.login")
    return page("ops/enrol.html", form=form, errors=errors, operator=operator,
                minimum=operators.MIN_PASSWORD,
                **NEW_AUTHENTICATOR.shown(operator.name, _("CertCenter console")))


@bp.get("/")
@signed_in("view_dashboard")
def dashboard(operator):
    return page("ops/dashboard.html", operator=operator, seen=console.dashboard(operator),
                may=lambda action: operators.may(operator, action))


@bp.get("/requests")
@signed_in("lookup")
def requests_queue(operator):
    """Business requests waiting for a decision, oldest first."""
    return page("ops/requests.html", operator=operator, waiting=issuance.list_requests(),
                notice=session.pop("ops_notice", None))


def _request_page(operator, request_id: int, errors=None, reject_form=None, approve_form=None):
    asked = issuance.find_request(request_id)
    return page("ops/request.html", operator=operator, errors=errors,
                reject_form=reject_form or RejectForm(formdata=None),
                approve_form=approve_form or ApproveForm(formdata=None),
                may_decide=operators.may(operator, "decide_request"), asked=asked,
                documents=issuance.DOCUMENTS, noted=issuance.documents_noted(asked),
                first=four_eyes.waiting("request.approve", request_id))


@bp.get(f"/requests/<int(max={MAX_ID}):request_id>")
@signed_in("lookup")
def request_detail(operator, request_id):
    return _request_page(operator, request_id)


def _decide(operator, request_id: int, form, field: str, decide):
    """Approve or reject: on a rule's refusal about the form's field, the request's page
    again with the message; else the queue, with what was done."""
    if not form.validate_on_submit():
        return _request_page(operator, request_id, errors=form_errors(form),
                             **{f"{field}_form": form})
    try:
        session["ops_notice"] = decide()
    except DomainError as error:
        if error.field is None:
            raise
        return _request_page(operator, request_id, errors=error_list(error),
                             **{f"{field}_form": form})
    return go("ops.requests_queue")


@bp.post(f"/requests/<int(max={MAX_ID}):request_id>/approve")
@signed_in("decide_request")
def approve(operator, request_id):
    form = ApproveForm()
    return _decide(operator, request_id, form, "approve", lambda: four_eyes.approve_request(
        request_id, operator.name, form.documents.data))


@bp.post(f"/requests/<int(max={MAX_ID}):request_id>/reject")
@signed_in("decide_request")
def reject(operator, request_id):
    form = RejectForm()

    def decide():
        issuance.reject_request(request_id, operator.name, form.reason.data)
        return "rejected"
    return _decide(operator, request_id, form, "reject", decide)


# -- customers and certificates --------------------------------------------------------------

@bp.get("/search")
@signed_in("lookup")
def search(operator):
    query = request.args.get("q", "")
    found, errors = None, None
    if "q" in request.args:
        try:
            found = console.search(query)
        except DomainError as error:
            errors = error_list(error, "q")
    return page("ops/search.html", operator=operator, query=query, found=found, errors=errors)


@bp.get("/customers/<code>")
@signed_in("lookup")
def customer(operator, code):
    return _customer_page(operator, code)


def _customer_page(operator, code, errors=None, status=None):
    return page("ops/customer.html", operator=operator, shown=console.customer_page(code),
                may_unlock=operators.may(operator, "unlock_customer"),
                may_reference=operators.may(operator, "issue_reference"),
                notice=session.pop("ops_notice", None), errors=errors, status=status)


@bp.post("/customers/<code>/reference")
@signed_in("issue_reference")
def issue_reference(operator, code):
    """A reference number and authorisation code for the customer's own program (CMP), for
    example to finish an interrupted reissue: shown once, to be given to the customer."""
    form = TypeForm()
    if not form.validate_on_submit():
        return _customer_page(operator, code, form_errors(form))
    customer = console.customer(code)
    try:
        authorized = cmp.authorize(customer, form.cert_type.data, "operator:" + operator.name)
    except DomainError as error:
        return _customer_page(operator, code, error_list(error, "cert_type"), error.status)
    return page("ops/reference.html", operator=operator, customer=customer,
                given=authorized.given, commands=authorized.commands)


@bp.get("/certificates/<serial>")
@signed_in("lookup")
def certificate(operator, serial):
    shown = console.certificate(serial)
    return page("ops/certificate.html", operator=operator, shown=shown,
                may_change=operators.may(operator, "change_status"),
                may_remind=(operators.may(operator, "resend_notice")
                            and reminders.resendable(shown.record)),
                days_left=days_left(shown.record.not_after),
                notice=session.pop("ops_notice", None),
                first=four_eyes.waiting("certificate.revoke", shown.record.serial))


@bp.post("/certificates/<serial>/remind")
@signed_in("resend_notice")
def resend_reminder(operator, serial):
    """Send the customer the expiry notice again (they lost it, or ask when it ends)."""
    record = console.certificate(serial).record
    reminders.resend(record, "operator:" + operator.name)
    session["ops_notice"] = "reminded"
    return go("ops.certificate", serial=record.serial)


def _revoke(record, actor, note, reason):
    done = four_eyes.revoke_certificate(record, reason, actor, note)
    return "revoke" if done else "revoke_waiting"


def _suspend(record, actor, note):
    status.suspend_certificate(record, "operator:" + actor, note=note)
    return "suspend"


def _resume(record, actor, note):
    status.resume_certificate(record, "operator:" + actor, note=note)
    return "resume"


_CHANGES = {"revoke": (OperatorRevokeForm, _revoke), "suspend": (NoteForm, _suspend),
            "resume": (NoteForm, _resume)}


@bp.route("/certificates/<serial>/<any(revoke, suspend, resume):change>",
          methods=["GET", "POST"])
@signed_in("change_status")
def change_status(operator, serial, change):
    """Revoke, suspend or resume on the customer's behalf, with a note for the audit trail;
    the customer gets the text message they would get had they done it themselves."""
    form_class, apply = _CHANGES[change]
    form = form_class()
    shown = console.certificate(serial)
    errors = None
    if form.validate_on_submit():
        extra = {"reason": form.reason.data} if change == "revoke" else {}
        try:
            done = apply(shown.record, operator.name, form.note.data, **extra)
        except DomainError as error:
            if error.field is None:
                raise
            errors = error_list(error)
        else:
            session["ops_notice"] = done
            return go("ops.certificate", serial=shown.record.serial)
    return page("ops/change.html", operator=operator, shown=shown, change=change, form=form,
                errors=errors)


# -- the audit trail ---------------------------------------------------------------------------

def _audit_filter() -> console.AuditFilter:
    return console.AuditFilter(**{name: request.args.get(name, "")[:100]
                                  for name in ("actor", "action", "target", "since")})


@bp.get("/audit")
@signed_in("read_audit")
def audit_trail(operator):
    chosen = _audit_filter()
    before = request.args.get("before", "")
    errors, shown = None, None
    try:
        shown = console.audit_page(chosen, int(before) if before.isdigit() else None)
    except DomainError as error:
        errors = error_list(error)
    filters = {k: v for k, v in vars(chosen).items() if v}
    return page("ops/audit.html", operator=operator, chosen=chosen, shown=shown, errors=errors,
                filters=filters)


@bp.get("/audit.csv")
@signed_in("read_audit")
def audit_export(operator):
    chosen = _audit_filter()
    chosen.query()                      # a bad date is refused before anything is sent
    response = Response(stream_with_context(console.audit_csv(chosen)), mimetype="text/csv")
    response.headers.set("Content-Disposition", "attachment", filename="audit.csv")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/audit/verify")
@signed_in("read_audit")
def audit_verify(operator):
    """The same check as `flask --app app audit verify`: the chain against every checkpoint."""
    return page("ops/audit_verify.html", operator=operator, verdict=checkpoints.verify())


# -- the outbox ----------------------------------------------------------------------------

@bp.get("/outbox")
@signed_in("read_outbox")
def outbox(operator):
    before = request.args.get("before", "")
    return page("ops/outbox.html", operator=operator,
                shown=console.outbox_page(int(before) if before.isdigit() else None),
                may_retry=operators.may(operator, "resend_notice"),
                report=session.pop("ops_retry_report", None))


@bp.post("/outbox/retry")
@signed_in("resend_notice")
def retry_outbox(operator):
    report = console.retry_outbox(operator)
    session["ops_retry_report"] = [report.sent, report.failed]
    return go("ops.outbox")


@bp.post("/customers/<code>/unlock")
@signed_in("unlock_customer")
def unlock_customer(operator, code):
    """Start a customer's identity checks again, with a note; they are told by text message."""
    form = NoteForm()
    if form.validate_on_submit():
        verification.unlock(console.customer(code).code, "operator:" + operator.name,
                            form.note.data)
        session["ops_notice"] = "unlocked"
    return go("ops.customer", code=code)


# -- operators and settings (administrators) -------------------------------------------------

@bp.get("/operators")
@signed_in("manage_operators")
def operator_list(operator):
    return page("ops/operators.html", operator=operator, everyone=operators.operators(),
                state=operators.state, notice=session.pop("ops_notice", None))


def _enrolment_link_page(operator, shown, link: str):
    return page("ops/enrolment_link.html", operator=operator, shown=shown, link=link,
                valid_hours=int(operators.ENROLMENT_VALID.total_seconds() // 3600))


@bp.route("/operators/new", methods=["GET", "POST"])
@signed_in("manage_operators")
def operator_add(operator):
    """Add an operator; the enrolment link is shown once, on this answer only."""
    form = OperatorAddForm()
    errors = None
    if form.validate_on_submit():
        try:
            added, link = operators.add_operator(form.name.data, form.role.data,
                                                 "operator:" + operator.name)
        except DomainError as error:
            errors = error_list(error, "name")
        else:
            return _enrolment_link_page(operator, added, link)
    return page("ops/operator_add.html", operator=operator, form=form, errors=errors,
                roles=operators.ROLES)


@bp.get("/operators/<name>")
@signed_in("manage_operators")
def operator_detail(operator, name):
    shown = operators.named(name)
    return page("ops/operator.html", operator=operator, shown=shown, state=operators.state(shown),
                last_login=operators.last_login(shown))


@bp.post("/operators/<name>/reset")
@signed_in("manage_operators")
def operator_reset(operator, name):
    """A new enrolment link: the operator sets a password and an app again."""
    shown = operators.another_operator(operator, name)
    link = operators.reset_operator(shown.name, "operator:" + operator.name)
    return _enrolment_link_page(operator, shown, link)


@bp.post("/operators/<name>/disable")
@signed_in("manage_operators")
def operator_disable(operator, name):
    shown = operators.another_operator(operator, name)
    operators.disable_operator(shown.name, "operator:" + operator.name)
    session["ops_notice"] = "disabled:" + shown.name
    return go("ops.operator_list")


@bp.get("/settings")
@signed_in("settings")
def settings_page(operator):
    """What this instance runs with, from its environment; never a secret's value."""
    return page("ops/settings.html", operator=operator, shown=console.running_settings(current_app.config))
