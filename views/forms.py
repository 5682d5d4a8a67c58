"""Flask-WTF forms: which fields each page takes, and the message when one is left empty.
The rules about the values themselves live in services."""
from flask import request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, MultipleFileField
from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    PasswordField,
    RadioField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields import FileField as AnyFileField
from wtforms.validators import InputRequired


class Form(FlaskForm):
    """A form posted by a browser: a file field takes only uploaded files and every other field
    only text, so a value of the wrong kind (or a JSON body) is as if nothing was sent, and
    the field's own message says what is missing. Services never see a FileStorage for a
    name, nor text for a file."""

    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form, formdata):
            if not form.is_submitted():
                return None
            files = {field.name for field in form if isinstance(field, AnyFileField)}
            return MultiDict(
                [(key, value) for key, value in request.files.items(multi=True) if key in files]
                + [(key, value) for key, value in request.form.items(multi=True)
                   if key not in files])


class IdentityForm(Form):
    name = StringField(validators=[InputRequired(_l("Enter your name"))])
    rrn = StringField(validators=[InputRequired(_l("Enter your resident registration number"))])
    business_number = StringField()
    account = StringField(validators=[InputRequired(_l("Enter your withdrawal account number"))])
    pin = PasswordField(validators=[InputRequired(_l("Enter the 4-digit account PIN"))])


class MethodForm(Form):
    method = RadioField(choices=["sms", "totp"],
                        validators=[InputRequired(_l("Select how to get your code"))])


class CodeForm(Form):
    code = StringField(validators=[InputRequired(_l("Enter the 6-digit code"))])


class TermsForm(Form):
    agree = BooleanField(validators=[InputRequired(_l("Agree to the terms to continue"))])


class TypeForm(Form):
    cert_type = RadioField(validators=[InputRequired(_l("Select a certificate type"))],
                           validate_choice=False)


class KeyForm(Form):
    key = RadioField(choices=["generate", "csr", "program"],
                     validators=[InputRequired(_l("Select how to create the key"))])


class CsrForm(Form):
    csr = FileField(validators=[InputRequired(_l("Select a certificate signing request file"))])


class PasswordForm(Form):
    password = PasswordField(validators=[InputRequired(_l("Enter a certificate password"))])
    password_again = PasswordField(validators=[InputRequired(_l("Enter the password again"))])


class ConfirmForm(Form):
    pass


class SerialForm(Form):
    serial = RadioField(validators=[InputRequired(_l("Select a certificate"))],
                        validate_choice=False)


class ReasonForm(Form):
    reason = RadioField(choices=["key-compromise", "affiliation-changed", "superseded",
                                 "cessation-of-operation"],
                        validators=[InputRequired(_l("Select why you are revoking it"))])


class FilesForm(Form):
    files = MultipleFileField(validators=[InputRequired(_l("Select your certificate files"))])


class PasswordChangeForm(Form):
    files = MultipleFileField(validators=[InputRequired(_l("Select your certificate files"))])
    old_password = PasswordField(validators=[InputRequired(_l("Enter the current password"))])
    password = PasswordField(validators=[InputRequired(_l("Enter a new password"))])
    password_again = PasswordField(validators=[InputRequired(_l("Enter the new password again"))])


class WayForm(Form):
    way = RadioField(choices=["files", "signature"],
                     validators=[InputRequired(_l("Select how to check your certificate"))])


class PossessionFilesForm(Form):
    files = MultipleFileField(validators=[InputRequired(_l("Select your certificate files"))])
    password = PasswordField(validators=[InputRequired(_l("Enter the certificate password"))])


class SignatureForm(Form):
    signature = TextAreaField(validators=[InputRequired(_l("Paste the signature the command printed"))])


class RenewKeyForm(Form):
    key = RadioField(choices=["new", "same"],
                     validators=[InputRequired(_l("Select whether to make a new key"))])


class AutomaticChoiceForm(Form):
    choice = RadioField(choices=["now", "keep"],
                        validators=[InputRequired(_l("Select what to do"))])


class AutoRenewForm(Form):
    lead_days = RadioField(choices=["7", "14", "30", "off"],
                           validators=[InputRequired(_l("Select when to renew it"))])


class ApproveForm(Form):
    # Which documents count, and which are required, is services.issuance's rule.
    documents = SelectMultipleField(validate_choice=False)


class RejectForm(Form):
    reason = StringField(validators=[InputRequired(_l("Give the reason for rejecting, for the customer to read"))])


class OperatorLoginForm(Form):
    name = StringField(validators=[InputRequired(_l("Enter your name"))])
    password = PasswordField(validators=[InputRequired(_l("Enter your password"))])


class OperatorEnrolmentForm(Form):
    password = PasswordField(validators=[InputRequired(_l("Choose a password"))])
    code = StringField(validators=[InputRequired(_l("Enter the 6-digit code"))])


class OperatorRevokeForm(Form):
    reason = RadioField(choices=["key-compromise", "affiliation-changed", "superseded",
                                 "cessation-of-operation", "privilege-withdrawn"],
                        validators=[InputRequired(_l("Select why you are revoking it"))])
    note = StringField()


class NoteForm(Form):
    note = StringField()


class OperatorAddForm(Form):
    name = StringField(validators=[InputRequired(_l("Enter the new operator's name"))])
    role = RadioField(choices=["support", "ra-officer", "auditor", "admin"],
                      validators=[InputRequired(_l("Select the operator's role"))])
