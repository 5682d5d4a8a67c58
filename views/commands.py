"""Operator commands (`flask --app app …`): the CLI front end over the same services as
the web pages."""
import getpass
import io
import json
import secrets as secrets_module
import sys
import zipfile
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from models import Customer, Operator, db
from models.migrations import MIGRATIONS, current_version, upgrade
from pki.ca import fingerprint as pki_fingerprint
from pki.profile import CERT_TYPES, KST
from services import (
    audit,
    ca_overview,
    ca_store,
    ceremony,
    checkpoints,
    clock,
    cmp,
    customers,
    enrolment_codes,
    files,
    four_eyes,
    issuance,
    jobs,
    operators,
    renewal,
    secrets,
    status,
    trust,
    verification,
)
from services.errors import DomainError
from views.messages import message_for


def _fail(error: DomainError):
    with current_app.test_request_context():      # messages are translated like the pages
        raise click.ClickException(message_for(error))


operator_option = click.option("--operator", default=getpass.getuser, show_default="OS user",
                               help="Who is acting, for the audit trail.")

db_cli = AppGroup("db", help="The database schema.")


@db_cli.command("upgrade")
def db_upgrade():
    """Apply pending schema migrations."""
    applied = upgrade()
    click.echo(f"Applied migrations {applied}." if applied else
               f"The database is up to date (version {current_version()} of {MIGRATIONS[-1][0]}).")


ca_cli = AppGroup("ca", help="The certificate authority.")


def _root_passphrase(passphrase_file, confirm: bool = False) -> bytes:
    """The root key's passphrase: from a file (its first line), or typed at the terminal."""
    if passphrase_file:
        lines = Path(passphrase_file).read_bytes().splitlines()
        return lines[0] if lines else b""
    return click.prompt("Root key passphrase", hide_input=True,
                        confirmation_prompt=confirm, err=True).encode()


root_key_option = click.option("--root-key", required=True, type=click.Path(dir_okay=False),
                               help="The offline root key file (root.key from ca init).")
root_passphrase_option = click.option(
    "--root-passphrase-file", type=click.Path(exists=True, dir_okay=False),
    help="Read the root key's passphrase from this file instead of the terminal.")


@ca_cli.command("init")
@click.option("--root-out", type=click.Path(file_okay=False),
              help="Where the root key goes (removable storage); it is not kept anywhere else.")
@root_passphrase_option
@click.option("--new-root-passphrase", is_flag=True,
              help="Make up a passphrase and print it once (for a demo instance).")
@click.option("--root-crl-days", default=ceremony.ARL_DAYS, show_default=True,
              help="How long the root's first CRL and OCSP answers are valid.")
@click.option("--crl-partitions", default=status.CRL_PARTITIONS_DEFAULT, show_default=True,
              help=f"Into how many CRLs (/pki/crl/<n>.crl) the revoked certificates are split, "
                   f"1 to {status.CRL_PARTITIONS_MAX}; fixed once the CA exists.")
@operator_option
def ca_init(root_out, root_passphrase_file, new_root_passphrase, root_crl_days, crl_partitions,
            operator):
    """Create the root CA, issuing CA and OCSP signer, unless they exist. The root's key is
    written to --root-out only, encrypted under a passphrase CertCenter does not store."""
    passphrase, made_up = None, None
    try:
        status.check_crl_partitions(crl_partitions)     # before the passphrase is typed
    except DomainError as error:
        _fail(error)
    if not ca_store.exists() and root_out:
        if new_root_passphrase:
            made_up = secrets_module.token_urlsafe(18)
            passphrase = made_up.encode()
        else:
            passphrase = _root_passphrase(root_passphrase_file, confirm=True)
    try:
        result = ceremony.init_ca(Path(root_out) if root_out else None, passphrase,
                                  root_crl_days, actor="operator:" + operator,
                                  crl_partitions=crl_partitions)
    except DomainError as error:
        _fail(error)
    click.echo("Created the CA." if result.created else
               "The CA already exists; nothing was changed.")
    for name, fingerprint in result.fingerprints.items():
        click.echo(f"  {name:8} SHA-256 {fingerprint}")
    if result.created:
        click.echo(f"The root key is in {result.root_key}: keep it offline; only key "
                   "ceremonies need it.")
    click.echo(f"CRL partitions: {status.crl_partitions()}.")
    if made_up:
        click.echo(f"Root key passphrase (shown once, not stored): {made_up}")


@ca_cli.command("sign-root-crl")
@root_key_option
@root_passphrase_option
@click.option("--days", default=ceremony.ARL_DAYS, show_default=True,
              help="Until when the root's CRL and OCSP answers are valid.")
@operator_option
def ca_sign_root_crl(root_key, root_passphrase_file, days, operator):
    """Ceremony: sign the root's CRL (/pki/root.crl) and its OCSP answers for the issuing CA."""
    try:
        published = ceremony.sign_root_crl(Path(root_key), _root_passphrase(root_passphrase_file),
                                           days, actor="operator:" + operator)
    except DomainError as error:
        _fail(error)
    click.echo(f"Root CRL number {published.number}, valid until "
               f"{published.next_update:%Y-%m-%d %H:%M}Z.")


@ca_cli.command("new-issuing")
@root_key_option
@root_passphrase_option
@operator_option
def ca_new_issuing(root_key, root_passphrase_file, operator):
    """Ceremony: re-issue the issuing CA certificate (same key and name; this version's
    policies and URLs; fresh validity)."""
    try:
        cert = ceremony.new_issuing(Path(root_key), _root_passphrase(root_passphrase_file),
                                    actor="operator:" + operator)
    except DomainError as error:
        _fail(error)
    click.echo(f"New issuing CA certificate {cert.serial_number:x}, valid until "
               f"{cert.not_valid_after_utc:%Y-%m-%d}; SHA-256 {pki_fingerprint(cert)}")


@ca_cli.command("move-root-out")
@click.option("--root-out", required=True, type=click.Path(file_okay=False),
              help="Where the root key goes (removable storage).")
@root_passphrase_option
@operator_option
def ca_move_root_out(root_out, root_passphrase_file, operator):
    """Migration for a CA made before the root went offline: move the root key out of the
    CA's online storage and re-issue the issuing CA certificate with the same key and name."""
    try:
        path = ceremony.move_root_out(Path(root_out), _root_passphrase(root_passphrase_file, True),
                                      actor="operator:" + operator)
    except DomainError as error:
        _fail(error)
    click.echo(f"The root key is now only in {path}; the issuing CA certificate was re-issued "
               "and the root's CRL published.")


@ca_cli.command("status")
def ca_status():
    """Where the CA keys are, the CA certificates, the CRL and OCSP signer dates, how much was
    signed, the audit trail's latest checkpoint."""
    seen = ca_overview.overview()
    click.echo(f"Signer backend: {seen.backend}")
    for cert in seen.certificates:
        click.echo(f"  {cert.role:8} {cert.subject}")
        click.echo(f"           SHA-256 {cert.fingerprint}; valid until {cert.not_after:%Y-%m-%d %H:%M}Z")
        click.echo(f"           key: {cert.key}")
    click.echo(f"Root CRL (ARL): number {seen.root_crl.number}, nextUpdate "
               f"{seen.root_crl.next_update:%Y-%m-%d %H:%M}Z" if seen.root_crl
               else "Root CRL (ARL): none published yet")
    if seen.root_warning:
        click.echo(f"  {seen.root_warning}")
    click.echo(f"CRL: number {seen.crl_number}, nextUpdate {seen.crl_next_update:%Y-%m-%d %H:%M}Z"
               if seen.crl_number else "CRL: none published yet")
    click.echo(f"  partitions: {seen.crl_partitions} (/pki/crl/0.crl to "
               f"/pki/crl/{seen.crl_partitions - 1}.crl)")
    click.echo(f"  certificates whose status change is not on every CRL yet: "
               f"{seen.unpublished_changes}")
    click.echo("Signed by the online keys: " + ", ".join(
        f"{count} {kind}" for kind, count in seen.signed.items()))
    click.echo(f"Interrupted issuances waiting for jobs run: {seen.unsettled_reservations}")
    checkpoint = seen.checkpoint
    click.echo(f"Audit: {seen.audit_events} events; " + (
        f"latest checkpoint at event {checkpoint.event_id}, {checkpoint.at:%Y-%m-%d %H:%M}Z"
        if checkpoint else "no checkpoint yet"))


customers_cli = AppGroup("customers", help="The customer registry.")


@customers_cli.command("add")
@click.option("--kind", type=click.Choice(["personal", "business"]), default="personal")
@click.option("--name", required=True, help="The person, or the company.")
@click.option("--rrn", required=True, help="Resident registration number (representative's).")
@click.option("--phone", required=True)
@click.option("--account", required=True)
@click.option("--pin", required=True, help="4-digit account PIN.")
@click.option("--email")
@click.option("--representative")
@click.option("--business-number")
@operator_option
def customers_add(operator, **fields):
    """Register one customer with one account."""
    try:
        customer = customers.add_customer(customers.NewCustomer(**fields), "operator:" + operator)
    except DomainError as error:
        _fail(error)
    click.echo(f"Added {customer.code} {customer.name}.")


@customers_cli.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@operator_option
def customers_import(csv_file, operator):
    """Import customers from a CSV file with the columns kind, name, rrn, phone, account,
    pin (and optionally email, representative, business_number). Bad rows are reported by
    line; the good ones are imported together."""
    text = csv_file.read()
    rows = max(0, text.count("\n") - 1 + (0 if text.endswith("\n") else 1))
    try:
        with click.progressbar(length=rows, label="Importing", file=sys.stderr) as bar:
            report = customers.import_csv(text, "operator:" + operator, progress=bar.update)
    except DomainError as error:
        _fail(error)
    with current_app.test_request_context():
        for line, code, field in report.errors:
            click.echo(f"line {line}: {field or '-'}: "
                       f"{message_for(DomainError(code, field=field))}", err=True)
    click.echo(f"Imported {len(report.imported)} customers; {len(report.errors)} rows refused.")
    if report.errors:
        sys.exit(1)


@customers_cli.command("list")
def customers_list():
    """List customers; a customer whose checks are stopped is marked."""
    for c in Customer.select().order_by(Customer.code):
        stopped = "  SELF-SERVICE STOPPED" if verification.is_suspended(c) else ""
        click.echo(f"{c.code}  {c.kind:8}  {c.name}  {c.rrn_masked}  {c.phone}{stopped}")


@customers_cli.command("unlock")
@click.argument("code")
@operator_option
def customers_unlock(code, operator):
    """Start a customer's identity checks again, after a pause or after too many failures
    stopped self-service. Confirm who is calling first."""
    try:
        customer = verification.unlock(code, "operator:" + operator)
    except DomainError as error:
        _fail(error)
    click.echo(f"Unlocked {customer.code} {customer.name}: identity checks work again.")


demo_cli = AppGroup("demo", help="Demo data.")

DEMO_PERSON = customers.NewCustomer(
    kind="personal", name="홍길동", rrn="900101-1234567", phone="010-0000-0001",
    account="110-123-456789", pin="1234", code="P0000001")
DEMO_BUSINESS = customers.NewCustomer(
    kind="business", name="(주)한빛상사", representative="김한빛", rrn="800202-2345678",
    business_number="123-45-67890", phone="010-0000-0002", account="220-987-654321",
    pin="4321", code="B0000001")


@demo_cli.command("seed")
def demo_seed():
    """Create the demo customers (once) and print how to sign in as them."""
    for new in (DEMO_PERSON, DEMO_BUSINESS):
        customer = Customer.get_or_none(Customer.code == new.code)
        if customer is None:
            customer = customers.add_customer(new, "system:demo")
            click.echo(f"Created {new.code}.")
        if new.kind == "personal" and not customer.totp_secret:
            with db.atomic():
                customer.totp_secret = secrets.encrypt(
                    "totp", verification.new_totp_secret().encode())
                customer.save()
        click.echo(f"{customer.code} {customer.name} ({customer.kind})")
        if new.kind == "business":
            click.echo(f"  representative {new.representative}, business number "
                       f"{new.business_number}")
        click.echo(f"  RRN {new.rrn}, account {new.account}, PIN {new.pin}, phone {new.phone}")
        secret = verification.totp_secret(customer)
        if secret:
            click.echo(f"  TOTP secret {secret}")
            click.echo(f"  {verification.totp_uri(customer, secret, 'CertCenter')}")
    _demo_admin()


DEMO_ADMIN = "demo.admin"


def _demo_admin() -> None:
    """The console's demo administrator: a fresh enrolment link until they have enrolled."""
    admin = Operator.get_or_none(Operator.name == DEMO_ADMIN)
    if admin is None:
        _, link = operators.add_operator(DEMO_ADMIN, "admin", "system:demo")
    elif operators.state(admin) != "active":
        link = operators.reset_operator(DEMO_ADMIN, "system:demo")
    else:
        click.echo(f"Console (/ops): {DEMO_ADMIN} (admin) is enrolled.")
        return
    click.echo(f"Console (/ops): enrol {DEMO_ADMIN} (admin) within 24 hours at\n  {link}")


requests_cli = AppGroup("requests", help="Business certificate requests.")


@requests_cli.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include decided requests.")
def requests_list(show_all):
    """List requests waiting for a decision."""
    for r in issuance.list_requests(None if show_all else "requested"):
        click.echo(f"{r.id:5}  {r.status:9}  {r.customer.code}  {r.customer.name}  "
                   f"{r.cert_type}  {r.created_at:%Y-%m-%d %H:%M}Z")


@requests_cli.command("approve")
@click.argument("request_id", type=int)
@click.option("--document", "documents", multiple=True, type=click.Choice(issuance.DOCUMENTS),
              help="A document checked (repeat; business-registration and representative-id "
                   "are required).")
@operator_option
def requests_approve(request_id, documents, operator):
    """Approve a request; the customer gets a text message. A business-general request takes
    a second officer (four eyes), as in the console."""
    try:
        done = four_eyes.approve_request(request_id, operator, documents)
    except DomainError as error:
        _fail(error)
    if done == "waiting":
        click.echo(f"Approval of request {request_id} recorded: a second officer must confirm "
                   "it within 24 hours.")
    else:
        click.echo(f"Approved request {request_id}.")


@requests_cli.command("reject")
@click.argument("request_id", type=int)
@click.option("--reason", required=True)
@operator_option
def requests_reject(request_id, reason, operator):
    """Reject a request with a reason the customer reads."""
    try:
        issuance.reject_request(request_id, operator, reason)
    except DomainError as error:
        _fail(error)
    click.echo(f"Rejected request {request_id}.")


certs_cli = AppGroup("certs", help="Certificates.")


@certs_cli.command("issue")
@click.option("--customer", "code", required=True)
@click.option("--type", "type_id", required=True, type=click.Choice(list(CERT_TYPES)))
@click.option("--rrn", required=True, help="The customer's RRN (a business: its business "
              "number), for the VID.")
@click.option("--password-file", type=click.File("r"), help="First line: the certificate "
              "password. Without it, give --csr.")
@click.option("--csr", "csr_file", type=click.File("rb"), help="A PKCS#10 request instead.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@operator_option
def certs_issue(code, type_id, rrn, password_file, csr_file, out, operator):
    """Issue a certificate and write its files under --out."""
    if (password_file is None) == (csr_file is None):
        raise click.UsageError("Give exactly one of --password-file and --csr.")
    try:
        customer = customers.find(code)
        issued = issuance.issue_certificate(
            customer, type_id, idn=rrn, actor="operator:" + operator,
            password=password_file.readline().rstrip("\r\n") if password_file else None,
            csr_der=csr_file.read() if csr_file else None, offer_downloads=False)
    except DomainError as error:
        _fail(error)
    out.mkdir(parents=True, exist_ok=True)
    for kind, filename, _media, content in issued.files:
        if kind == "npki":
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                archive.extractall(out)
                click.echo("Wrote " + ", ".join(str(out / n) for n in archive.namelist()))
        elif kind != "cert" or csr_file:
            (out / filename).write_bytes(content)
            click.echo(f"Wrote {out / filename}")
    click.echo(f"Issued {issued.certificate.serial} to {customer.code}"
               + (f", replacing {issued.replaced.serial}" if issued.replaced else "") + ".")


@certs_cli.command("list")
@click.option("--customer", "code")
def certs_list(code):
    """List certificates, serials as 40-digit hex."""
    query = issuance.Certificate.select().order_by(issuance.Certificate.created_at)
    if code:
        try:
            query = issuance.certificates_of(customers.find(code))
        except DomainError as error:
            _fail(error)
    for cert in query:
        state = "renewed" if renewal.is_renewed(cert) else cert.status
        auto = f"auto-{cert.auto_renew_days}d" if cert.auto_renew_days else "-"
        click.echo(f"{cert.serial}  {state:9}  {auto:8}  {cert.customer.code}  "
                   f"{cert.cert_type:17}  {cert.not_after:%Y-%m-%d}  {cert.subject}")


def _status_change(serial: str, change, operator: str, done: str, **kwargs):
    try:
        cert = status.find_certificate(serial, actor="operator:" + operator)
        cert = change(cert, operator=operator, **kwargs)
    except DomainError as error:
        _fail(error)
    if cert is None:
        click.echo(f"Revocation of {serial} for key compromise recorded: a second officer "
                   "must confirm it within 24 hours.")
        return
    # The CRL the certificate names, which the change has just re-signed.
    crl = status.latest_crl(cert.crl_partition)
    scope = "full CRL" if cert.crl_partition is None else f"CRL of partition {cert.crl_partition}"
    click.echo(f"{done} {cert.serial} ({cert.customer.code}). {scope} {crl.number} published "
               f"with {crl.entries} entries.")
    for serial in cert.changed_along:
        click.echo(f"{done} with it: {serial} (renewed into it, or the same key).")


@certs_cli.command("revoke")
@click.argument("serial")
@click.option("--reason", required=True, type=click.Choice(status.OPERATOR_REASONS))
@operator_option
def certs_revoke(serial, reason, operator):
    """Revoke a certificate for good (SERIAL: the 40-digit hex of `certs list`). For key
    compromise, a second officer confirms (four eyes, as in the console)."""
    _status_change(serial, four_eyes.revoke_certificate, operator, "Revoked", reason=reason)


@certs_cli.command("suspend")
@click.argument("serial")
@operator_option
def certs_suspend(serial, operator):
    """Suspend a certificate (certificateHold) until it is resumed."""
    _status_change(serial, lambda cert, operator: status.suspend_certificate(
        cert, "operator:" + operator), operator, "Suspended")


@certs_cli.command("resume")
@click.argument("serial")
@operator_option
def certs_resume(serial, operator):
    """Resume a suspended certificate."""
    _status_change(serial, lambda cert, operator: status.resume_certificate(
        cert, "operator:" + operator), operator, "Resumed")


@certs_cli.command("auto-renew")
@click.argument("serial")
@click.option("--lead-days", type=click.Choice([str(d) for d in renewal.LEAD_DAYS]),
              help="Renew this many days before expiry.")
@click.option("--off", is_flag=True, help="Turn automatic renewal off.")
@operator_option
def certs_auto_renew(serial, lead_days, off, operator):
    """Turn automatic renewal of a certificate on (--lead-days 7, 14 or 30) or --off.
    `jobs run` then renews it with the same public key and tells the customer."""
    if (lead_days is None) == (not off):
        raise click.UsageError("Give exactly one of --lead-days and --off.")
    try:
        cert = status.find_certificate(serial, actor="operator:" + operator)
        cert = renewal.set_auto_renewal(cert, None if off else int(lead_days),
                                        "operator:" + operator)
    except DomainError as error:
        _fail(error)
    if cert.auto_renew_days is None:
        click.echo(f"Automatic renewal of {cert.serial} is off.")
    elif renewal.auto_renewal_due(cert) <= clock.now():
        click.echo(f"{cert.serial} is due for automatic renewal now ({cert.auto_renew_days} "
                   "days before it expires): the next `jobs run` renews it.")
    else:
        click.echo(f"{cert.serial} will be renewed automatically on "
                   f"{clock.aware(renewal.auto_renewal_due(cert)).astimezone(KST):%Y-%m-%d %H:%M} KST, "
                   f"{cert.auto_renew_days} days before it expires.")


ocsp_cli = AppGroup("ocsp-signer", help="The delegated OCSP signer.")


@ocsp_cli.command("rotate")
@operator_option
def ocsp_rotate(operator):
    """Issue a new OCSP signer now."""
    fingerprint, signed = status.rotate_ocsp_signer("operator:" + operator)
    click.echo(f"New OCSP signer, SHA-256 {fingerprint}; signed the OCSP answers of {signed} "
               "certificates again.")


jobs_cli = AppGroup("jobs", help="Periodic work, safe to run from cron.")


@jobs_cli.command("run")
@click.option("--dry-run", is_flag=True, help="Print what would be done, and do nothing.")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="With --dry-run: what would be done on this day (KST), YYYY-MM-DD.")
def jobs_run(dry_run, as_of):
    """Send expiry reminders, renew certificates set to renew automatically, retry
    notifications that could not be sent, purge expired downloads and transfers, publish
    the CRL every 12 hours, sign the OCSP answers again before they are half-way to their
    nextUpdate and re-issue the OCSP signer a week before it expires. Safe to run from cron
    every few minutes, and twice at once."""
    if as_of and not dry_run:
        raise click.UsageError("--as-of is accepted only together with --dry-run.")
    if not dry_run:
        for line in jobs.run():
            click.echo(line)
        return
    at = jobs.end_of_day(as_of.date()) if as_of else clock.now()
    click.echo(f"Dry run for {clock.aware(at).astimezone(KST):%Y-%m-%d %H:%M:%S} KST; "
               "nothing is changed.")
    planned = jobs.tasks(at)
    for task in planned:
        click.echo("Would: " + task.plan)
    if not planned:
        click.echo("Nothing to do.")


audit_cli = AppGroup("audit", help="The hash-chained audit trail and its signed checkpoints.")


@audit_cli.command("checkpoint")
def audit_checkpoint():
    """Sign the audit trail's head now (`jobs run` does it after its work)."""
    signed = checkpoints.sign()
    if signed is None:
        latest = checkpoints.latest()
        click.echo("No events since the latest checkpoint" + (
            f" (event {latest.event_id})." if latest else "; the trail is empty."))
        return
    click.echo(f"Signed a checkpoint at event {signed.event_id}, hash {signed.event_hash}.")


@audit_cli.command("verify")
@click.option("--copy", "copies", multiple=True, type=click.File("r", encoding="utf-8"),
              help="A checkpoint someone kept (from /pki/audit-checkpoint); repeatable.")
def audit_verify(copies):
    """Recompute the chain and hold it against every checkpoint: exit 0 when the trail holds,
    1 naming the first event that fails."""
    try:
        verdict = checkpoints.verify([copy.read() for copy in copies])
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    latest = verdict.latest
    last = (f"latest checkpoint at event {latest.event_id}, {latest.at:%Y-%m-%d %H:%M:%S}Z"
            if latest else "no checkpoint yet")
    if verdict.holds:
        click.echo(f"The audit trail holds: {verdict.events} events; {last}.")
        return
    click.echo(f"The audit trail fails at event {verdict.failed_event}: {verdict.reason}.", err=True)
    sys.exit(1)


@audit_cli.command("show")
@click.option("--target", help="Only events about this certificate serial or customer code.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="From this day (UTC).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audit_show(target, since, as_json):
    """Print audit events, oldest first."""
    for event in audit.events(target=target, since=since):
        if as_json:
            click.echo(json.dumps({"id": event.id, "at": f"{event.at:%Y-%m-%dT%H:%M:%S}Z",
                                   "actor": event.actor, "action": event.action,
                                   "target": event.target, "details": json.loads(event.details),
                                   "hash": event.hash}, ensure_ascii=False))
        else:
            click.echo(f"{event.id:>6} {event.at:%Y-%m-%d %H:%M:%S}Z {event.actor} "
                       f"{event.action} {event.target or '-'} {event.details}")


files_cli = AppGroup("files", help="Certificate files, for the support desk.")


@files_cli.command("inspect")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--password-file", type=click.File("r"), help="First line: the password.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable, with randomNum in hex.")
def files_inspect(paths, password_file, as_json):
    """Say what certificate files are: subject, issuer, serial, validity, our status; the
    key's encryption, whether the password opens it and the key matches. Exit status 0 when
    everything given opens and matches, 1 otherwise."""
    password = password_file.readline().rstrip("\r\n") if password_file else None
    try:
        found = files.inspect([(Path(p).name, Path(p).read_bytes()) for p in paths], password)
    except DomainError as error:
        _fail(error)
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2, default=str))
    else:
        for key, value in found.items():
            if key != "random_num":
                click.echo(f"{key.replace('_', ' '):20} {value}")
    sys.exit(0 if found.get("ok") else 1)


trust_cli = AppGroup("trust", help="Trust anchors (other institutions' root CAs) and the "
                     "intermediates under them, for registering their certificates.")


@trust_cli.command("add")
@click.argument("cert_file", type=click.File("rb"))
@click.option("--as", "kind", type=click.Choice([trust.ROOT, trust.INTERMEDIATE]),
              default=trust.ROOT, show_default=True,
              help="A root is a trust anchor; an intermediate only helps build paths to one.")
@operator_option
def trust_add(cert_file, kind, operator):
    """Trust a root CA certificate (PEM or DER): customers may then register certificates
    issued under it. With --as intermediate, keep a CA certificate between a root and
    customers' certificates, for when their files do not carry it. Adding the same one again
    changes nothing."""
    try:
        cert, added = trust.add(cert_file.read(), kind, "operator:" + operator)
    except DomainError as error:
        _fail(error)
    click.echo(("Added " if added else "Already trusted: ") + f"{kind} "
               + cert.subject.rfc4514_string())
    click.echo(f"  SHA-256 {trust.fingerprint(cert)}")


@trust_cli.command("list")
def trust_list():
    """List the trust anchors (root) and intermediates: subject, SHA-256 fingerprint, validity."""
    found = [(trust.ROOT, cert) for cert in trust.anchors()]
    found += [(trust.INTERMEDIATE, cert) for cert in trust.intermediates()]
    if not found:
        click.echo("No trust anchors.")
    for kind, cert in found:
        click.echo(f"{kind:12} {cert.subject.rfc4514_string()}")
        click.echo(f"  SHA-256 {trust.fingerprint(cert)}")
        click.echo(f"  valid {cert.not_valid_before_utc:%Y-%m-%d %H:%M}Z to "
                   f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M}Z")


operators_cli = AppGroup("operators", help="The bank's staff who use the console (/ops).")


@operators_cli.command("add")
@click.option("--name", required=True, help="Login name: lower-case letters, digits, . _ -")
@click.option("--role", required=True, type=click.Choice(operators.ROLES))
@operator_option
def operators_add(name, role, operator):
    """Add an operator; prints their one-time enrolment link (valid 24 hours)."""
    try:
        added, link = operators.add_operator(name, role, "operator:" + operator)
    except DomainError as error:
        _fail(error)
    click.echo(f"Added {added.name} ({added.role}). Enrolment link, valid 24 hours, "
               f"for {added.name} only:\n  {link}")


@operators_cli.command("list")
def operators_list():
    """Operators, their roles and whether they are enrolled, enrolling or disabled."""
    for each in operators.operators():
        click.echo(f"{each.name:24} {each.role:11} {operators.state(each)}")


@operators_cli.command("disable")
@click.argument("name")
@operator_option
def operators_disable(name, operator):
    """Stop an operator: no more logins, and their sessions end now."""
    try:
        operators.disable_operator(name, "operator:" + operator)
    except DomainError as error:
        _fail(error)
    click.echo(f"Disabled {name}; their sessions have ended.")


@operators_cli.command("reset")
@click.argument("name")
@operator_option
def operators_reset(name, operator):
    """A new enrolment link for an operator who lost their password or authenticator."""
    try:
        link = operators.reset_operator(name, "operator:" + operator)
    except DomainError as error:
        _fail(error)
    click.echo(f"New enrolment link for {name}, valid 24 hours:\n  {link}")


cmp_cli = AppGroup("cmp", help="Enrolment with the customer's own CMP client.")


@cmp_cli.command("authorize")
@click.option("--customer", "code", required=True)
@click.option("--type", "type_id", required=True, type=click.Choice(list(CERT_TYPES)))
@operator_option
def cmp_authorize(code, type_id, operator):
    """Give a customer a reference number and authorisation code (참조번호·인가코드) for one
    certificate of a type, e.g. to finish an interrupted reissue with their own program. A
    pair given before for the same type stops working."""
    try:
        authorized = cmp.authorize(customers.find(code), type_id, "operator:" + operator)
    except DomainError as error:
        _fail(error)
    given = authorized.given
    click.echo(f"Reference number:   {given.reference}\n"
               f"Authorisation code: {' '.join(given.code_groups)}   (shown once)\n"
               f"For one {type_id} certificate of {code}, until {given.expires_at:%Y-%m-%d %H:%M}Z; "
               f"{enrolment_codes.MAX_WRONG} wrong tries make it void. With openssl:\n"
               + "".join(f"  {line}\n" for line in authorized.commands))


def register_commands(app) -> None:
    for group in (db_cli, ca_cli, customers_cli, demo_cli, requests_cli, certs_cli, ocsp_cli,
                  files_cli, jobs_cli, trust_cli, audit_cli, operators_cli, cmp_cli):
        app.cli.add_command(group)
