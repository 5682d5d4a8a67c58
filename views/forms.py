"""Flask-WTF forms: which fields each page takes, and the message when one is left empty.
The rules about the values themselves live in services."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, MultipleFileField
from wtforms import BooleanField, PasswordField, RadioField, StringField, TextAreaField
from wtforms.validators import InputRequired


class IdentityForm(FlaskForm):
    name = StringField(validators=[InputRequired(_l("Enter your name"))])
    rrn = StringField(validators=[InputRequired(_l("Enter your resident registration number"))])
    business_number = StringField()
    account = StringField(validators=[InputRequired(_l("Enter your withdrawal account number"))])
    pin = PasswordField(validators=[InputRequired(_l("Enter the 4-digit account PIN"))])


class MethodForm(FlaskForm):
    method = RadioField(choices=["sms", "totp"],
                        validators=[InputRequired(_l("Select how to get your code"))])


class CodeForm(FlaskForm):
    code = StringField(validators=[InputRequired(_l("Enter the 6-digit code"))])


class TermsForm(FlaskForm):
    agree = BooleanField(validators=[InputRequired(_l("Agree to the terms to continue"))])


class TypeForm(FlaskForm):
    cert_type = RadioField(validators=[InputRequired(_l("Select a certificate type"))],
                           validate_choice=False)


class KeyForm(FlaskForm):
    key = RadioField(choices=["generate", "csr"],
                     validators=[InputRequired(_l("Select how to create the key"))])


class CsrForm(FlaskForm):
    csr = FileField(validators=[InputRequired(_l("Select a certificate signing request file"))])


class PasswordForm(FlaskForm):
    password = PasswordField(validators=[InputRequired(_l("Enter a certificate password"))])
    password_again = PasswordField(validators=[InputRequired(_l("Enter the password again"))])


class ConfirmForm(FlaskForm):
    pass


class SerialForm(FlaskForm):
    serial = RadioField(validators=[InputRequired(_l("Select a certificate"))],
                        validate_choice=False)


class ReasonForm(FlaskForm):
    reason = RadioField(choices=["key-compromise", "affiliation-changed", "superseded",
                                 "cessation-of-operation"],
                        validators=[InputRequired(_l("Select why you are revoking it"))])


class FilesForm(FlaskForm):
    files = MultipleFileField(validators=[InputRequired(_l("Select your certificate files"))])


class PasswordChangeForm(FlaskForm):
    files = MultipleFileField(validators=[InputRequired(_l("Select your certificate files"))])
    old_password = PasswordField(validators=[InputRequired(_l("Enter the current password"))])
    password = PasswordField(validators=[InputRequired(_l("Enter a new password"))])
    password_again = PasswordField(validators=[InputRequired(_l("Enter the new password again"))])


class WayForm(FlaskForm):
    way = RadioField(choices=["files", "signature"],
                     validators=[InputRequired(_l("Select how to check your certificate"))])


class PossessionFilesForm(FlaskForm):
    files = MultipleFileField(validators=[InputRequired(_l("Select your certificate files"))])
    password = PasswordField(validators=[InputRequired(_l("Enter the certificate password"))])


class SignatureForm(FlaskForm):
    signature = TextAreaField(validators=[InputRequired(_l("Paste the signature the command printed"))])


class RenewKeyForm(FlaskForm):
    key = RadioField(choices=["new", "same"],
                     validators=[InputRequired(_l("Select whether to make a new key"))])


class AutomaticChoiceForm(FlaskForm):
    choice = RadioField(choices=["now", "keep"],
                        validators=[InputRequired(_l("Select what to do"))])


class AutoRenewForm(FlaskForm):
    lead_days = RadioField(choices=["7", "14", "30", "off"],
                           validators=[InputRequired(_l("Select when to renew it"))])
