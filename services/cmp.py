"""The registration authority for CMP clients (RFC 4210 and 9810 over HTTP, RFC 6712):
`openssl cmp`, or any other client, gets, renews and revokes a certificate with the key made
and kept on the customer's side.

    ir, cr, p10cr   with a reference number and authorisation code (services.enrolment_codes):
                    PBM protection, the reference as senderKID; answered under the same PBM
    kur             signed by the certificate it renews, inside its renewal window
    rr              signed by the certificate it revokes
    certConf        the client takes the certificate: only now is it stored as theirs
    genm            the CA certificates (caCerts) and the root (rootCaCert)
    error           the client gives up: a certificate waiting for it is revoked

Everything not answered under a PBM is signed by the CMP signer (ca_store.cmp_signer). The
rules are the web's (issuance.issuable_plan, renewal.refusal, status.revoke_certificate), and
issuing takes the usual steps (reserve, lint, sign) up to the reply; storing waits for the
certConf. A certificate whose certConf never comes is revoked by `jobs run` once its
reservation is older than reservations.SETTLE_AFTER, and a certConf after that is refused.
Implicit confirmation is never granted: the certConf is the delivery (RFC 4210 5.1.1.1 lets
the server decline what the client asks)."""
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from peewee import IntegrityError

from models import Certificate, CmpTransaction, SerialReservation, db
from pki import cmp as pki_cmp
from pki import crl as pki_crl
from pki import csr as pki_csr
from pki.errors import PkiError
from pki.profile import CERT_TYPES
from pki.serials import serial_hex
from services import (
    audit,
    ca_store,
    clock,
    enrolment_codes,
    issuance,
    limits,
    renewal,
    reservations,
    settings,
    status,
)
from services.errors import DomainError

CONTENT_TYPE = "application/pkixcmp"          # RFC 6712 3.4
ENROLMENTS = ("ir", "cr", "p10cr")
# The reasons a holder may give (status.CUSTOMER_REASONS), by the RFC 5280 flag an rr names.
_REASONS = {pki_crl.REASONS[name]: name for name in status.CUSTOMER_REASONS}
# A rule that says no, as the PKIFailureInfo bit the client reads with its statusString.
_FAIL_INFO = {"enrolment_code_unknown": "notAuthorized", "request_needed": "notAuthorized",
              "client_blocked": "notAuthorized",
              "request_waiting": "notAuthorized", "cert_type_not_for_you": "notAuthorized",
              "csr_weak_key": "badCertTemplate", "cmp_not_ours": "signerNotTrusted",
              "cmp_transaction_unknown": "badRequest", "cmp_confirm_late": "certRevoked",
              "cmp_cert_hash": "badCertId", "issue_conflict": "transactionIdInUse",
              "lint_failed": "systemFailure"}       # any other rule: badRequest


@dataclass(frozen=True)
class Authorization:
    """A pair as it is shown once, with the commands that use it."""
    given: enrolment_codes.Given
    commands: list[str]


def authorize(customer, type_id: str, actor: str) -> Authorization:
    """A reference number and authorisation code for the customer's own program to enrol one
    certificate of `type_id` (enrolment_codes.give), and how to use it with `openssl cmp`: make
    a key, then ask for its certificate; the subject is ours to choose, so none is sent."""
    given = enrolment_codes.give(customer, type_id, actor)
    url = urlsplit(settings.current().base_url)
    path = (url.path.rstrip("/") + "/cmp").lstrip("/")
    tls = " -tls_used" if url.scheme == "https" else ""
    return Authorization(given, [
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem",
        f"openssl cmp -cmd ir -server {url.netloc} -path {path}{tls} -ref {given.reference} "
        f"-secret pass:{given.code} -newkey key.pem -certout cert.pem -cacertsout root.pem"])


@dataclass
class _Sender:
    """Who a request comes from, once its protection checked out, and how to protect the
    answer: the pair of an enrolment, or the certificate that signed a kur or rr."""
    actor: str
    protect: Callable
    pair: enrolment_codes.Open | None = None
    certificate: Certificate | None = None
    transaction: CmpTransaction | None = None


def _signed(reply) -> bytes:
    cert, signer = ca_store.cmp_signer()
    return pki_cmp.protect_with_signature(reply, signer, cert,
                                          chain=[ca_store.load_ca().issuing_cert])


def answer(der: bytes, explain: Callable[[DomainError], str], client: str) -> bytes:
    """The DER PKIMessage that answers the DER PKIMessage `der` from the address `client`.
    Every refusal is a reply the client reads (an `error`, or a rejection in the reply it
    expects) with its PKIFailureInfo and a statusString from `explain` (the view's translated
    message)."""
    try:
        request = pki_cmp.parse_request(der)
    except pki_cmp.CmpError as error:
        return _signed(pki_cmp.error_reply(error.header, error.fail_info,
                                           explain(_domain(error))))
    try:
        sender = _authenticate(request, client)
    except (pki_cmp.CmpError, DomainError) as error:
        refusal = _domain(error) if isinstance(error, pki_cmp.CmpError) else error
        return _signed(pki_cmp.error_reply(request.header, _fail_info(error),
                                           explain(refusal)))
    try:
        reply = _HANDLERS[request.body_type](request, sender)
    except (pki_cmp.CmpError, DomainError, PkiError) as error:
        refusal = error if isinstance(error, DomainError) else _domain(error)
        reply = pki_cmp.rejection_reply(request, _fail_info(error), explain(refusal))
    return sender.protect(reply)


def _domain(error: PkiError) -> DomainError:
    """A pki refusal as a message the views can say: a protocol error by its failure bit,
    any other (a weak key) by its own code."""
    if isinstance(error, pki_cmp.CmpError):
        return DomainError("cmp_" + sorted(error.fail_info)[0], status=400)
    return DomainError(error.code, status=400)


def _fail_info(error) -> frozenset:
    if isinstance(error, pki_cmp.CmpError):
        return error.fail_info
    return frozenset({_FAIL_INFO.get(error.code, "badRequest")})


# -- who is asking ---------------------------------------------------------------------------

def _authenticate(request: pki_cmp.Request, client: str) -> _Sender:
    body = request.body_type
    if body in ENROLMENTS:
        return _by_guess(request, client)
    if body in ("certConf", "error"):
        transaction = _transaction(request)
        if transaction.enrolment_code is not None:
            sender = _by_pair(request, enrolment_codes.Open(
                transaction.enrolment_code, enrolment_codes.code_of(transaction.enrolment_code)))
        else:
            sender = _by_certificate(request, transaction.renewed)
        sender.transaction = transaction
        return sender
    if body in ("kur", "rr"):
        return _by_certificate(request, _our_certificate(request))
    if body == "genm":
        # The CA certificates are public: asked under a pair, the answer is under its PBM
        # (the pair stays unspent); asked otherwise, it is signed.
        if isinstance(request.protection, pki_cmp.PbmParameters):
            return _by_guess(request, client)
        return _Sender("cmp:anyone", _signed)
    raise pki_cmp.CmpError("cmp_unexpected", "badRequest", body, header=request.header)


def _by_guess(request: pki_cmp.Request, client: str) -> _Sender:
    """A request under a pair not yet spent, which anyone may try: each client address has
    limits.CLIENT_TRIES an hour of unknown references and wrong codes (so that nobody voids
    other people's pairs by guessing their references), on top of each pair's own MAX_WRONG."""
    attempt = limits.reserve_client_try(limits.per_client("cmp", client))
    sender = _by_pair(request, _pair_named(request))
    attempt.succeeded()
    return sender


def _pair_named(request: pki_cmp.Request) -> enrolment_codes.Open:
    kid = request.header.sender_kid or b""
    if not isinstance(request.protection, pki_cmp.PbmParameters) or not kid.isdigit():
        raise pki_cmp.CmpError("cmp_wrong_protection", "wrongIntegrity",
                               "an enrolment needs the reference number and PBM",
                               header=request.header)
    return enrolment_codes.open_pair(kid.decode())


def _by_pair(request: pki_cmp.Request, pair: enrolment_codes.Open) -> _Sender:
    actor = "cmp:" + pair.record.reference
    secret = _matching_secret(request, pair)
    if secret is None:
        if request.body_type in (*ENROLMENTS, "genm"):     # a guess at an unspent pair
            enrolment_codes.wrong_code(pair, actor)
        raise pki_cmp.CmpError("cmp_bad_mac", "badMessageCheck", "the PBM does not match",
                               header=request.header)
    ca = ca_store.load_ca()
    return _Sender(actor, lambda reply: pki_cmp.protect_with_pbm(
        reply, secret, ca.issuing_cert.subject, request.header.sender_kid), pair=pair)


def _matching_secret(request: pki_cmp.Request, pair: enrolment_codes.Open) -> bytes | None:
    """The code as the client typed it: as issued, or as shown, in groups of four with a
    space or hyphen between them (one try either way)."""
    code = pair.code.decode()
    groups = enrolment_codes.groups(code)
    for secret in (code, " ".join(groups), "-".join(groups)):
        try:
            pki_cmp.verify_pbm(request, secret.encode())
        except pki_cmp.CmpError as error:
            if error.fail_info != {"badMessageCheck"}:
                raise
            continue
        return secret.encode()
    return None


def _our_certificate(request: pki_cmp.Request) -> Certificate:
    """The certificate that signed a kur or rr (RFC 9483 3.3: the first of extraCerts),
    when it is one we issued, exactly as we issued it."""
    if not request.extra_certs:
        raise pki_cmp.CmpError("cmp_no_certificate", "wrongIntegrity",
                               "a kur or rr is signed by the certificate it is about",
                               header=request.header)
    presented = request.extra_certs[0]
    record = Certificate.get_or_none(
        Certificate.serial == serial_hex(presented.serial_number))
    if record is None or bytes(record.der) != presented.public_bytes(Encoding.DER):
        raise DomainError("cmp_not_ours", status=403)
    return record


def _by_certificate(request: pki_cmp.Request, record: Certificate) -> _Sender:
    pki_cmp.verify_signature(request, x509.load_der_x509_certificate(bytes(record.der)))
    return _Sender(f"cmp:{record.serial}", _signed, certificate=record)


def _transaction(request: pki_cmp.Request) -> CmpTransaction:
    found = CmpTransaction.get_or_none(
        CmpTransaction.transaction_id == (request.header.transaction_id or b"").hex())
    if found is None:
        raise DomainError("cmp_transaction_unknown", status=400)
    return found


# -- what is asked ----------------------------------------------------------------------------

def _transaction_id(request: pki_cmp.Request) -> str:
    if not request.header.transaction_id:
        raise pki_cmp.CmpError("cmp_no_transaction", "badRequest", "no transactionID",
                               header=request.header)
    return request.header.transaction_id.hex()


def _hold(request: pki_cmp.Request, cert: x509.Certificate, actor: str, **link) -> None:
    """Keep the signed certificate waiting for the client's certConf."""
    serial = serial_hex(cert.serial_number)
    try:
        with db.atomic():
            CmpTransaction.create(transaction_id=_transaction_id(request),
                                  body_type=request.body_type,
                                  cert_req_id=request.certificate_request.cert_req_id,
                                  serial=serial, actor=actor, created_at=clock.now(), **link)
            audit.record(actor, "cmp.certificate_sent", serial, body=request.body_type)
    except IntegrityError:
        reservations.revoke_undelivered(serial, actor)
        raise pki_cmp.CmpError("cmp_transaction_in_use", "transactionIdInUse",
                               header=request.header) from None


def _enrol(request: pki_cmp.Request, sender: _Sender):
    """ir, cr, p10cr: a certificate of the pair's type for the pair's customer, under our
    profile (the subject the client asks for is not used), reissuing one held."""
    pair, wanted = sender.pair, request.certificate_request
    customer = pair.record.customer
    step = issuance.issuable_plan(customer, pair.record.cert_type)
    pki_csr.check_public_key(wanted.public_key)
    _transaction_id(request)
    with db.atomic():
        enrolment_codes.use(pair)        # one certificate per pair, whatever happens next
    now = clock.now()
    cert = issuance.sign_end_entity(customer, step.cert_type, wanted.public_key, None, now,
                                    issuance.not_after(step, now),
                                    issuance.unique_digits(customer, now), sender.actor)
    _hold(request, cert, sender.actor, enrolment_code=pair.record)
    ca = ca_store.load_ca()
    return pki_cmp.certificate_reply(request, cert, chain=[ca.issuing_cert],
                                     ca_pubs=[ca.root_cert])


def _renew(request: pki_cmp.Request, sender: _Sender):
    """kur: the successor of the certificate that signed it, in its renewal window."""
    old, wanted = sender.certificate, request.certificate_request
    problem = renewal.refusal(old)
    if problem:
        raise problem
    if wanted.old_cert_serial is not None and serial_hex(wanted.old_cert_serial) != old.serial:
        raise pki_cmp.CmpError("cmp_other_certificate", "badCertId",
                               "oldCertID names another certificate", header=request.header)
    pki_csr.check_public_key(wanted.public_key)
    _transaction_id(request)
    old_x509 = x509.load_der_x509_certificate(bytes(old.der))
    same_key = wanted.public_key == old_x509.public_key()
    renewal.claim(old, automatic=False)
    try:
        cert = issuance.sign_end_entity(
            old.customer, CERT_TYPES[old.cert_type], wanted.public_key,
            renewal.kept_identify_data(old.customer, old_x509) if same_key else None,
            clock.now(), renewal.renewal_end(old), renewal.kept_unique_digits(old_x509),
            sender.actor)
        _hold(request, cert, sender.actor, renewed=old)
    except BaseException:
        renewal.release(old)
        raise
    return pki_cmp.certificate_reply(request, cert, chain=[ca_store.load_ca().issuing_cert])


def _end(transaction: CmpTransaction) -> bool:
    """Close the transaction; False when it was closed already (a second certConf)."""
    return bool(CmpTransaction.update(ended_at=clock.now()).where(
        (CmpTransaction.id == transaction.id) & CmpTransaction.ended_at.is_null()).execute())


def _confirm(request: pki_cmp.Request, sender: _Sender):
    """certConf: the client takes the certificate (stored now as the customer's, replacing
    what it reissues or renews), or turns it down (revoked now)."""
    transaction = sender.transaction
    reservation = SerialReservation.get(SerialReservation.serial == transaction.serial)
    cert = x509.load_der_x509_certificate(bytes(reservation.der))
    if len(request.confirmations) != 1 or \
            request.confirmations[0].cert_req_id != transaction.cert_req_id:
        raise pki_cmp.CmpError("cmp_other_request", "badCertId", header=request.header)
    confirmation = request.confirmations[0]
    if not pki_cmp.confirms(confirmation, cert):
        raise DomainError("cmp_cert_hash", status=400)
    if confirmation.status.status == "rejection":
        return _client_gives_up(request, sender)
    if clock.now() - transaction.created_at >= reservations.SETTLE_AFTER:
        raise DomainError("cmp_confirm_late", status=409)
    superseded = []
    try:
        with db.atomic():
            if not _end(transaction):
                raise DomainError("cmp_confirm_late", status=409)
            if transaction.renewed is not None:
                record = renewal.store_renewal(transaction.renewed, cert, sender.actor,
                                               key_generated_here=False)
            else:
                customer = reservation.customer
                record, superseded = issuance.store_issued(
                    customer, issuance.issuable_plan(customer, reservation.cert_type), cert,
                    sender.actor, key_generated_here=False)
    except IntegrityError:
        raise DomainError("issue_conflict", status=409) from None
    issuance.announce_superseded(superseded)
    status.presign_ocsp(record.serial)
    return pki_cmp.confirm_reply(request)


def _client_gives_up(request: pki_cmp.Request, sender: _Sender):
    """An `error`, or a certConf that rejects the certificate: it is never delivered."""
    transaction = sender.transaction
    with db.atomic():
        ended = _end(transaction)
        if ended:
            audit.record(sender.actor, "cmp.certificate_refused", transaction.serial)
    if ended:
        if transaction.renewed is not None:
            renewal.release(transaction.renewed)
        reservations.revoke_undelivered(transaction.serial, sender.actor)
    return pki_cmp.confirm_reply(request)


def _revoke(request: pki_cmp.Request, sender: _Sender):
    """rr: the holder revokes the certificate that signed it, giving one of their reasons."""
    wanted, record = request.revocation, sender.certificate
    if serial_hex(wanted.serial) != record.serial or \
            wanted.issuer != ca_store.load_ca().issuing_cert.subject:
        raise pki_cmp.CmpError("cmp_other_certificate", "badCertId",
                               "an rr revokes the certificate that signs it",
                               header=request.header)
    reason = _REASONS.get(wanted.reason)
    if reason is None:
        raise DomainError("cmp_reason_needed", status=400)
    status.revoke_certificate(record, reason, sender.actor, reasons=status.CUSTOMER_REASONS)
    return pki_cmp.revocation_reply(request)


def _ca_certificates(request: pki_cmp.Request, _sender: _Sender):
    ca = ca_store.load_ca()
    return pki_cmp.genp_reply(request, ca_certs=[ca.issuing_cert, ca.root_cert],
                              root_cert=ca.root_cert)


_HANDLERS = {"ir": _enrol, "cr": _enrol, "p10cr": _enrol, "kur": _renew, "rr": _revoke,
             "certConf": _confirm, "error": _client_gives_up, "genm": _ca_certificates}
