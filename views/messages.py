"""The sentence a person reads for each domain error id, translated at render time."""

from flask_babel import format_datetime, lazy_gettext as _l


MESSAGES = {
    # identity
    "rrn_format": _l("Enter your resident registration number as 13 digits, like 900101-1234567"),
    "business_number_format": _l("Enter the business registration number as 10 digits, like 123-45-67890"),
    "phone_format": _l("Enter a mobile number, like 010-1234-5678"),
    "account_format": _l("Enter the account number as 10 to 14 digits"),
    "pin_format": _l("Enter the 4-digit account PIN"),
    "email_format": _l("Enter an email address, like name@example.com"),
    "name_format": _l("Enter the name as it is on your ID, up to 40 characters"),
    "identity_mismatch": _l("These details do not match our records. Check them and try again"),
    "customer_locked": _l("Too many wrong tries. Identity checks are paused until %(until)s"),
    "client_blocked": _l("Too many wrong tries from this connection. Try again in an hour"),
    "code_none": _l("Ask for a new code first"),
    "code_expired": _l("That code has expired. Ask for a new code"),
    "code_too_many_tries": _l("Too many wrong codes. Ask for a new code"),
    "code_format": _l("Enter the 6-digit code"),
    "code_wrong": _l("That code is not right. You have %(left)s tries left"),
    "code_wrong_totp": _l("That code is not right. Enter the code your authenticator app shows now"),
    "totp_replayed": _l("That code was already used. Wait for the next code in your app"),
    "totp_not_enrolled": _l("You have no authenticator app set up. Use a text message code"),
    "code_resend_too_soon": _l("Wait %(seconds)s seconds before asking for another code"),
    "code_send_limit": _l("You have asked for 5 codes in the last hour. Try again later"),
    "verification_needed": _l("Confirm your identity again to continue"),
    # issuance
    "cert_type_unknown": _l("Select a certificate type"),
    "cert_type_not_for_you": _l("Select a certificate type for your kind of customer"),
    "consent_missing": _l("Agree to the terms to continue"),
    "key_choice_missing": _l("Select how to create the key"),
    "csr_missing": _l("Select a certificate signing request file"),
    "csr_unreadable": _l("The file is not a certificate signing request. Upload a PEM or DER PKCS#10 file"),
    "csr_bad_signature": _l("The request's signature does not match its key. Create the request again"),
    "csr_weak_key": _l("The request's key is too weak. Use RSA of 2048 bits or more, or ECDSA P-256 or P-384"),
    "csr_too_large": _l("The file is too large. A signing request is under 16 KB"),
    "upload_too_large": _l("The file is too large. Upload a file under 256 KB"),
    "password_length": _l("The password must be 10 to 64 characters long"),
    "password_letter": _l("The password must contain a letter"),
    "password_digit": _l("The password must contain a digit"),
    "password_special": _l("The password must contain a special character, like ! or #"),
    "password_forbidden_char": _l("The password must not contain ' \" \\ or |"),
    "password_sequence": _l("The password must not contain 3 characters in sequence, like abc or 321"),
    "password_repeat": _l("The password must not contain the same character 3 times in a row, like aaa"),
    "password_mismatch": _l("The passwords do not match. Enter the same password twice"),
    "request_needed": _l("A business certificate needs an operator's approval first"),
    "request_waiting": _l("Your request is waiting for an operator's approval"),
    "request_exists": _l("You already have a request for this certificate type"),
    "issue_conflict": _l("This certificate was changed at the same time by another request. Start again"),
    "lint_failed": _l("We could not issue the certificate because of a problem on our side. Nothing was changed. Call us"),
    "ca_missing": _l("The certificate authority is not set up yet"),
    "download_unknown": _l("This download link is not valid"),
    "download_used": _l("This download link was already used. Each link works once"),
    "download_expired": _l("This download link has expired. Links work for 10 minutes"),
    "csrf": _l("This form has expired. Go back and try again"),
    # status changes
    "certificate_not_found": _l("Select one of your certificates"),
    "certificate_not_eligible": _l("That certificate cannot be changed this way. Select another"),
    "already_revoked": _l("This certificate is already revoked"),
    "already_suspended": _l("This certificate is already suspended"),
    "status_changed": _l("This certificate's status changed meanwhile. Check My certificates"),
    "certificate_expired": _l("This certificate has expired, so its status cannot change"),
    "reason_missing": _l("Select why you are revoking it"),
    "crl_conflict": _l("The revocation list is being published by another request. Try again"),
    "customer_not_found": _l("No customer %(customer)s"),
    "csv_columns": _l("The CSV file has no column %(columns)s"),
    "request_not_found": _l("No request %(id)s"),
    "request_decided": _l("Request %(id)s was already decided (%(state)s)"),
    "reject_reason_missing": _l("Give the reason for rejecting, for the customer to read"),
    "password_required": _l("Enter the certificate password"),
    "key_unreadable": _l("The key file cannot be read. Choose the signPri.key file of your certificate"),
    "key_password_incorrect": _l("The password is not right for this key file"),
    "idn_invalid": _l("The identity number must be digits only"),
    "serial_invalid": _l("Enter the serial number as 40 hexadecimal digits"),
    "identify_data_unreadable": _l("The certificate's identity data cannot be read"),
    "ca_key_unreadable": _l("A CA key file cannot be read. Check the instance folder"),
    "ca_passphrase_incorrect": _l("The CA passphrase is not right for the CA keys. Check CERTCENTER_CA_PASSPHRASE"),
    "customer_duplicate": _l("A customer with this resident registration number, business number or account already exists"),
    "customer_kind": _l("The kind must be personal or business"),
}


def message_for(error) -> str:
    template = MESSAGES.get(error.code, _l("Something went wrong. Try again"))
    params = {k: (format_datetime(v, "short") if hasattr(v, "hour") else v)
              for k, v in error.params.items()}
    return str(template) % params if params else str(template)
