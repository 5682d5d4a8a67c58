"""Check my certificate file (certificate login): choose a way, then open the files with the
password or paste a signature of a challenge. The proof is kept in the session for 10 minutes
for the steps that need it.

The three steps are written once here and served by two blueprints: this one, and renewal,
which logs in with the certificate it is about to renew (see `way_step`, `files_step`,
`signature_step`)."""
from datetime import datetime

from flask import Blueprint, request, session

from pki.profile import CERT_TYPES
from services import clock, possession
from services.errors import DomainError
from views import error_list, go, page, verified
from views.forms import PossessionFilesForm, SignatureForm, WayForm
from views.transfer import MAX_FILES

bp = Blueprint("possession", __name__, url_prefix="/my/check")


def way_step(base: str, **context):
    """How to prove it: files or signature. `base` is the blueprint serving the steps."""
    form = WayForm()
    if form.validate_on_submit():
        return go(f"{base}.with_files" if form.way.data == "files" else f"{base}.with_signature")
    return page("possession/choose.html", form=form, base=base, **context)


def files_step(customer, base: str, on_proved, in_force: bool = True, **context):
    """Open the uploaded files with the password; `on_proved(record, opened, password)`
    answers."""
    form = PossessionFilesForm()
    if form.validate_on_submit():
        uploads = request.files.getlist("files")[:MAX_FILES]
        try:
            record, opened = possession.open_own_files(
                customer, [(f.filename or "", f.read()) for f in uploads], form.password.data,
                request.remote_addr or "?", in_force=in_force)
        except DomainError as error:
            return page("possession/files.html", status=error.status,
                        errors=error_list(error, "files"), form=form, base=base, **context)
        return on_proved(record, opened, form.password.data)
    return page("possession/files.html", form=form, base=base, **context)


def signature_step(customer, base: str, on_proved, in_force: bool = True, **context):
    """Check a signature of the challenge shown last; `on_proved(record, None, None)`
    answers."""
    form = SignatureForm()
    if form.validate_on_submit():
        challenge = session.pop("challenge", None)          # one attempt per challenge
        try:
            if challenge is None:
                raise DomainError("challenge_expired", field="signature")
            record = possession.prove_with_signature(
                customer, challenge["text"], datetime.fromisoformat(challenge["at"]),
                form.signature.data, request.remote_addr or "?", in_force=in_force)
        except DomainError as error:
            return _signature_page(base, form, error_list(error, "signature"), error.status,
                                   **context)
        return on_proved(record, None, None)
    return _signature_page(base, form, None, **context)


def _signature_page(base, form, errors, status=None, **context):
    """A fresh challenge with every page: each one may be tried once."""
    text = possession.new_challenge()
    session["challenge"] = {"text": text, "at": clock.now().isoformat()}
    return page("possession/signature.html", status=status, errors=errors, form=form,
                challenge=text, base=base, **context)


def _proved(record, _opened, _password):
    session["possession"] = {"serial": record.serial, "at": clock.now().isoformat()}
    session.pop("challenge", None)
    return go("possession.done")


@bp.route("/", methods=["GET", "POST"])
@verified("possession.choose")
def choose(customer):
    return way_step("possession")


@bp.route("/files", methods=["GET", "POST"])
@verified("possession.choose")
def with_files(customer):
    return files_step(customer, "possession", _proved)


@bp.route("/signature", methods=["GET", "POST"])
@verified("possession.choose")
def with_signature(customer):
    return signature_step(customer, "possession", _proved)


@bp.get("/done")
@verified("possession.choose")
def done(customer):
    proof = session.get("possession")
    if not proof:
        return go("possession.choose")
    record = next((c for c in customer.certificates if c.serial == proof["serial"]), None)
    return page("possession/done.html", record=record, cert_type=CERT_TYPES[record.cert_type])
