"""Certificate files a customer holds: change the certificate password. No verification: the
files and the old password are the proof, and nothing is stored."""
from flask import Blueprint, request

from services import files
from services.errors import DomainError
from views import attachment, error_list, page
from views.forms import PasswordChangeForm
from views.transfer import MAX_FILES

bp = Blueprint("certfiles", __name__, url_prefix="/files")


@bp.route("/password", methods=["GET", "POST"])
def password():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        uploads = request.files.getlist("files")[:MAX_FILES]
        try:
            new = files.change_password([(f.filename or "", f.read()) for f in uploads],
                                        form.old_password.data, form.password.data,
                                        form.password_again.data, request.remote_addr or "?")
        except DomainError as error:
            return page("certfiles/password.html", status=error.status,
                        errors=error_list(error, "files"), form=form)
        return attachment(new.content, new.media_type, new.filename)
    return page("certfiles/password.html", form=form)
