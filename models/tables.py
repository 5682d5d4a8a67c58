"""The tables. Times are naive UTC; secrets are kept only as hashes, HMACs or ciphertext."""
from peewee import (
    BlobField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from models.db import db


class BaseModel(Model):
    class Meta:
        database = db


class Customer(BaseModel):
    code = CharField(unique=True)                 # P0000001 / B0000001
    kind = CharField()                            # "personal" | "business"
    # name, representative and phone are indexed: the console finds customers by what a
    # caller tells the operator.
    name = CharField(index=True)                  # the person, or the company
    representative = CharField(null=True, index=True)   # business: the representative's name
    business_number = CharField(null=True, unique=True)  # business: 10 digits
    rrn_hmac = CharField(unique=True)             # the person's or representative's RRN, HMAC'd
    rrn_masked = CharField()                      # 900101-1******
    phone = CharField(index=True)
    email = CharField(null=True)
    language = CharField(default="ko")
    totp_secret = TextField(null=True)            # encrypted at rest
    totp_last_step = IntegerField(null=True)      # the last accepted TOTP time step: no replay
    failed_tries = IntegerField(default=0)        # failures of their secrets since the last success
    locked_until = DateTimeField(null=True)       # the end of the last pause the customer was told of
    self_service_suspended_at = DateTimeField(null=True)   # too many failures: until an operator unlocks
    sessions_valid_from = DateTimeField(null=True)   # sign-out ends every session before this
    created_at = DateTimeField()


class Account(BaseModel):
    customer = ForeignKeyField(Customer, backref="accounts", on_delete="CASCADE")
    number = CharField(unique=True)               # digits only
    pin_hash = CharField()


class OneTimeCode(BaseModel):
    """A code sent by SMS to finish identity verification."""
    customer = ForeignKeyField(Customer, backref="codes", on_delete="CASCADE")
    code_hash = CharField()
    created_at = DateTimeField()
    expires_at = DateTimeField()
    tries = IntegerField(default=0)
    used_at = DateTimeField(null=True)


class AttemptCounter(BaseModel):
    """Tries per client address or target inside a window that starts with the first
    (services.limits); also the once-only claims of confirm buttons (services.flows)."""
    key = CharField(unique=True)
    count = IntegerField(default=0)
    window_start = DateTimeField()


class Certificate(BaseModel):
    serial = CharField(max_length=40, unique=True)   # 40-digit hex: it does not fit INTEGER
    customer = ForeignKeyField(Customer, backref="certificates")
    cert_type = CharField()
    status = CharField(default="valid")              # valid | revoked | suspended
    subject = TextField()
    not_before = DateTimeField()
    not_after = DateTimeField()
    der = BlobField()
    key_generated_here = BooleanField()
    revoked_at = DateTimeField(null=True)
    revocation_reason = CharField(null=True)
    status_changed_at = DateTimeField(null=True)
    replaced_by = ForeignKeyField("self", null=True, backref="replaced")
    # "<customer id>:<type>" while this is the customer's current certificate of the type,
    # else NULL: the unique index makes a second current one impossible, even under races.
    current_slot = CharField(null=True, unique=True)
    created_at = DateTimeField()
    # Automatic renewal: how many days before expiry (7, 14 or 30), or NULL when off.
    auto_renew_days = IntegerField(null=True)
    # Set while a renewal is being signed: a second renewal of the same certificate (the
    # web page and the cron job at once) stops before the CA key signs anything.
    renewal_started_at = DateTimeField(null=True)
    # The CRL partition named in the certificate's CRL distribution point; NULL for one that
    # names the full CRL (issued before partitions), which only the full CRL lists.
    crl_partition = IntegerField(null=True)


class CertificateRequest(BaseModel):
    """A business certificate waiting for, or past, an operator's decision."""
    customer = ForeignKeyField(Customer, backref="requests")
    cert_type = CharField()
    status = CharField(default="requested")          # requested | approved | rejected | issued
    reason = TextField(null=True)
    decided_by = CharField(null=True)
    decided_at = DateTimeField(null=True)
    certificate = ForeignKeyField(Certificate, null=True)
    created_at = DateTimeField()


class Download(BaseModel):
    """A single-use, short-lived link to one file of a finished issuance."""
    token_hash = CharField(unique=True)
    certificate = ForeignKeyField(Certificate, backref="downloads")
    kind = CharField()                               # npki | p12 | cert | chain
    filename = CharField()
    media_type = CharField()
    content = BlobField(null=True)                   # deleted once downloaded or expired
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)
    created_at = DateTimeField()


class Notification(BaseModel):
    """The outbox: every SMS and email, queued, then sent by a backend."""
    customer = ForeignKeyField(Customer, null=True, backref="notifications")
    channel = CharField()                            # sms | email
    recipient = CharField()
    purpose = CharField()
    subject = CharField(null=True)
    body = TextField()                               # sealed (encrypted) when it carries a code
    sealed = BooleanField(default=False)
    language = CharField()
    status = CharField(default="queued")             # queued | sending | sent | failed
    tries = IntegerField(default=0)
    created_at = DateTimeField()
    sent_at = DateTimeField(null=True)

    class Meta:
        # The console's outbox (undelivered, newest first) and its count of failures, without
        # reading every message ever sent.
        indexes = ((("status", "id"), False),)


class AuditEvent(BaseModel):
    """One state change. Each row's hash covers the previous row's hash: a chain."""
    at = DateTimeField()
    actor = CharField()
    action = CharField()
    target = CharField(null=True)
    details = TextField()
    prev_hash = CharField(max_length=64, unique=True)  # two appends after one event cannot both commit
    hash = CharField(max_length=64, unique=True)

    class Meta:
        # The console's filters and a certificate's history, newest (or oldest) first by id,
        # without reading the whole trail; (at, id) finds the first event since a date.
        indexes = ((("actor", "id"), False), (("action", "id"), False),
                   (("target", "id"), False), (("at", "id"), False))


class Crl(BaseModel):
    """Each CRL published, newest with the highest number of its scope: the full CRL and
    each partition number their own. Unique indexes on the number within each scope (made
    by migration 13) are the claim two publishers cannot both take."""
    number = IntegerField()
    crl_partition = IntegerField(null=True)       # NULL: the full CRL
    this_update = DateTimeField()
    next_update = DateTimeField()
    entries = IntegerField()
    der = BlobField()


class SerialReservation(BaseModel):
    """A serial taken for a certificate about to be signed, committed before anything is
    signed, and how far that issuance got: reserved -> linted -> signed -> issued (or refused
    by lint). A signature is never made without this row; `jobs run` revokes a certificate
    that was signed but never stored, so none is left valid and unknown."""
    serial = CharField(max_length=40, unique=True)
    customer = ForeignKeyField(Customer)
    cert_type = CharField()
    public_key_sha256 = CharField(max_length=64)
    actor = CharField()
    reserved_at = DateTimeField(index=True)
    step = CharField(default="reserved")   # reserved | linted | signed | issued | refused | abandoned | revoked
    tbs_sha256 = CharField(max_length=64, null=True)
    der = BlobField(null=True)             # the signed certificate, from the moment it exists


class AuditCheckpoint(BaseModel):
    """The audit chain's head at a moment, signed by the issuing CA's key, which is not in the
    database: whoever can rewrite the database cannot rewrite these statements."""
    event_id = IntegerField()
    event_hash = CharField(max_length=64)
    at = DateTimeField()
    statement = TextField()       # the exact text signed
    signature = BlobField()
    signer = CharField(max_length=64)   # SHA-256 fingerprint of the signing certificate


class Operator(BaseModel):
    """A member of the bank's staff who works in the console (/ops), with one role. Enrolled
    through a one-time link: until then there is no password and no authenticator."""
    name = CharField(unique=True)
    role = CharField()                              # support | ra-officer | auditor | admin
    password_hash = TextField(null=True)            # scrypt, salted
    totp_secret = TextField(null=True)              # encrypted at rest
    totp_last_step = IntegerField(null=True)        # the last accepted TOTP time step: no replay
    enrolment_hash = CharField(null=True, unique=True)   # keyed hash of the link's token
    enrolment_expires_at = DateTimeField(null=True)
    disabled_at = DateTimeField(null=True)
    sessions_valid_from = DateTimeField(null=True)  # sessions started before this have ended
    created_at = DateTimeField()
    created_by = CharField()


class SecondApproval(BaseModel):
    """Four eyes: an operator's decision that takes effect only when a second operator of the
    same role confirms it within 24 hours (a business-general approval, an operator's
    revocation for key compromise)."""
    kind = CharField()                              # request.approve | certificate.revoke
    subject = CharField()                           # the request id, or the serial
    asked_by = CharField()                          # operator name
    params = TextField(default="{}")                # JSON: what the decision needs (reason, note)
    asked_at = DateTimeField()
    expires_at = DateTimeField()
    confirmed_by = CharField(null=True)
    confirmed_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("kind", "subject"), False),)


class SigningTally(BaseModel):
    """How many signatures the online CA keys made, per kind ("ocsp"; certificates, CRLs and
    checkpoints are counted from their own rows), for `ca status`."""
    kind = CharField(primary_key=True)
    count = IntegerField(default=0)


class UnpublishedChange(BaseModel):
    """A status change not yet on a published CRL, written in the change's own transaction:
    if the process dies before the CRL is published, `jobs run` and the next start see it.
    One row per CRL that must carry the change: the full CRL, and the certificate's partition."""
    serial = CharField(max_length=40)
    changed_at = DateTimeField()
    crl_partition = IntegerField(null=True)       # NULL: the full CRL


class CaParameter(BaseModel):
    """A CA setting chosen once, at `ca init`, and shared by every host (crl_partitions)."""
    name = CharField(primary_key=True)
    value = TextField()


class Transfer(BaseModel):
    """Certificate files on their way from one device to another (인증서 내보내기/가져오기).
    The files are encrypted under a key derived from the one-time code, which is not kept."""
    locator = CharField(index=True)               # the code's first 4 digits: which transfer
    code_hmac = CharField(unique=True)
    salt = BlobField()
    sealed = BlobField(null=True)                 # nonce + AES-256-GCM ciphertext
    kind = CharField()                            # npki | p12
    filename = CharField()
    wrong_tries = IntegerField(default=0)
    expires_at = DateTimeField()
    received_at = DateTimeField(null=True)
    created_at = DateTimeField()


class RegisteredCertificate(BaseModel):
    """Another institution's certificate a customer registered here (타기관 인증서 등록).
    Only the certificate is kept, never its key."""
    customer = ForeignKeyField(Customer, backref="registered", on_delete="CASCADE")
    serial = CharField(max_length=40)             # the issuer's serial, 40-digit hex
    issuer = TextField()                          # RFC 4514
    subject = TextField()
    not_before = DateTimeField()
    not_after = DateTimeField()
    der = BlobField()
    registered_at = DateTimeField()

    class Meta:
        # A serial is unique only per issuer; the same certificate once per customer.
        indexes = ((("customer", "issuer", "serial"), True),)


class Reminder(BaseModel):
    """An expiry reminder (30, 7 or 1 day before), recorded once per certificate and day:
    the unique index is what keeps two job runs from both sending it."""
    certificate = ForeignKeyField(Certificate, backref="reminders", on_delete="CASCADE")
    days_before = IntegerField()
    status = CharField()                          # sent | skipped (a later one was due)
    created_at = DateTimeField()

    class Meta:
        indexes = ((("certificate", "days_before"), True),)


class OcspResponse(BaseModel):
    """A signed OCSP answer about one of our certificates, for one CertID hash, served as
    stored (services.status). It is served only while the certificate's status and last
    change are still the ones it was signed for, and its signer is the current one."""
    serial = CharField(max_length=40)
    hash_algorithm = CharField()                  # sha1 | sha256: the CertID's hash
    issuer_name_hash = BlobField()                # the CertID it answers, as clients send it
    issuer_key_hash = BlobField()
    status = CharField()                          # the certificate's status when signed
    status_changed_at = DateTimeField(null=True)  # and its last change then
    signer = CharField(max_length=64)             # SHA-256 of the OCSP signer certificate, hex
    der = BlobField()
    this_update = DateTimeField()
    next_update = DateTimeField()

    class Meta:
        table_name = "ocsp_response"
        indexes = ((("serial", "hash_algorithm"), True),)


class CaFile(BaseModel):
    """What the online CA keeps, shared by every host, under the names its files had in the
    instance folder before (services.ca_store): the CA certificates, the online keys (PKCS#8
    encrypted under the CA passphrase) or their CKA_IDs in the token, the root's CRL and its
    pre-signed answers. `version` rises with each write: processes reload what changed."""
    name = CharField(primary_key=True)            # issuing.crt, ocsp.key, root-ocsp/<serial>-sha1.der
    data = BlobField()
    version = IntegerField(default=1)
    changed_at = DateTimeField()

    class Meta:
        table_name = "ca_file"


class TrustCertificate(BaseModel):
    """Other institutions' CA certificates (services.trust): trust anchors, and intermediates
    that help build a path to one."""
    fingerprint = CharField(primary_key=True, max_length=64)   # SHA-256, hex
    kind = CharField()                            # root | intermediate
    der = BlobField()
    added_at = DateTimeField()

    class Meta:
        table_name = "trust_certificate"


class EnrolmentCode(BaseModel):
    """A reference number and authorisation code (참조번호·인가코드) for one certificate of one
    type, enrolled with the customer's own CMP client (services.enrolment_codes). The code is
    kept sealed, not hashed: the client proves it by a password-based MAC over its message,
    which only the code itself can check."""
    reference = CharField(unique=True, max_length=8)   # 8 digits
    code_sealed = TextField()                     # AES-GCM under a key from the master key
    customer = ForeignKeyField(Customer, backref="enrolment_codes", on_delete="CASCADE")
    cert_type = CharField()
    made_by = CharField()                         # customer:… or operator:…
    created_at = DateTimeField()
    expires_at = DateTimeField()
    wrong_tries = IntegerField(default=0)
    used_at = DateTimeField(null=True)
    voided_at = DateTimeField(null=True)          # too many wrong tries, or a newer pair

    class Meta:
        table_name = "enrolment_code"


class CmpTransaction(BaseModel):
    """A CMP enrolment between its certificate reply and the client's certConf
    (services.cmp): the certificate is signed and kept with its serial reservation, and is
    stored as the customer's only when confirmed. One per reference number."""
    transaction_id = CharField(unique=True)       # the client's transactionID, hex
    body_type = CharField()                       # ir | cr | p10cr | kur
    cert_req_id = IntegerField()
    serial = CharField(max_length=40, unique=True)   # the reservation's
    enrolment_code = ForeignKeyField(EnrolmentCode, null=True, unique=True, on_delete="SET NULL")
    renewed = ForeignKeyField(Certificate, null=True)   # kur: the certificate being renewed
    actor = CharField()
    created_at = DateTimeField()
    ended_at = DateTimeField(null=True)           # confirmed, refused by the client, or lapsed

    class Meta:
        table_name = "cmp_transaction"


ALL_TABLES = [Customer, Account, OneTimeCode, AttemptCounter, Certificate, CertificateRequest,
              Download, Notification, AuditEvent, Crl, Transfer, RegisteredCertificate, Reminder,
              UnpublishedChange, AuditCheckpoint, SerialReservation, SigningTally, Operator,
              SecondApproval, CaParameter, OcspResponse, CaFile, TrustCertificate,
              EnrolmentCode, CmpTransaction]
