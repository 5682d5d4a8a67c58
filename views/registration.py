"""Register another institution's certificate (타기관 인증서 등록): start page -> (identity
verification) -> the files, their password and the RRN on one page -> done. Removing a
registration: a confirm page, then back to My certificates with a notice."""
from flask import Blueprint, abort, request, session
from flask_babel import lazy_gettext as _l
from flask_wtf.file import MultipleFileField
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired

from services import registration
from services.errors import DomainError
from views import MAX_ID, error_list, go, page, verified
from views.forms import ConfirmForm, Form
from views.transfer import MAX_FILES

bp = Blueprint("registration", __name__, url_prefix="/register")



class RegistrationForm(Form):
    files = MultipleFileField(validators=[InputRequired(_l("Select your certificate files"))])
    password = PasswordField(validators=[InputRequired(_l("Enter the certificate password"))])
    rrn = StringField(validators=[InputRequired(_l("Enter your resident registration number"))])


@bp.get("/")
def start():
    return page("registration/start.html")


@bp.route("/files", methods=["GET", "POST"])
@verified("registration.upload")
def upload(customer):
    form = RegistrationForm()
    if form.validate_on_submit():
        uploads = request.files.getlist("files")[:MAX_FILES + 1]
        try:
            if len(uploads) > MAX_FILES:
                raise DomainError("bundle_too_many", field="files")
            row = registration.register(customer,
                                        [(f.filename or "", f.read()) for f in uploads],
                                        form.password.data, form.rrn.data,
                                        request.remote_addr or "?")
        except DomainError as error:
            return page("registration/files.html", status=error.status,
                        errors=error_list(error, "files"), form=form)
        session["registered"] = row.id
        return go("registration.done")
    return page("registration/files.html", form=form)


@bp.get("/done")
@verified("mycerts.index")
def done(customer):
    try:
        row = registration.find(customer, session.get("registered") or 0)
    except DomainError:
        return go("mycerts.index")
    return page("registration/done.html", row=row, names=registration.names(row))


@bp.route(f"/<int(max={MAX_ID}):registration_id>/remove", methods=["GET", "POST"])
@verified("mycerts.index")
def remove(customer, registration_id):
    """GET, or the button in My certificates (a POST without `confirm`), asks; a POST with
    `confirm` removes."""
    try:
        row = registration.find(customer, registration_id)
    except DomainError:
        abort(404)
    form = ConfirmForm()
    if form.validate_on_submit() and request.form.get("confirm") == "yes":
        try:
            registration.remove(customer, registration_id, "customer:" + customer.code)
        except DomainError:
            abort(404)                   # removed meanwhile, by another tab
        session["flash"] = "registration_removed"
        return go("mycerts.index")
    return page("registration/remove.html", status=200, errors=[], row=row,
                names=registration.names(row))
