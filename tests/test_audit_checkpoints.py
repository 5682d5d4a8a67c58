"""The audit trail proves itself: signed checkpoints of its head, `audit verify` against them
and against copies kept outside, and every kind of tampering it must catch."""
import json
import subprocess

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from models import AuditCheckpoint, AuditEvent
from pki import ca as pki_ca
from pki import checkpoint as pki_checkpoint
from services import audit, ca_store, checkpoints, issuance, status

# Every signature here is made once with the CA keys in files and once in a PKCS#11 token.
pytestmark = pytest.mark.both_backends

PASSWORD = "Blue!sky42x"


@pytest.fixture
def trail(app, demo):
    """Events from real work: an issuance and a revocation, with a checkpoint after them."""
    issued = issuance.issue_certificate(demo["person"], "personal-banking", idn="9001011234567",
                                        actor="test", password=PASSWORD, offer_downloads=False)
    status.revoke_certificate(issued.certificate, "key-compromise", actor="test")
    assert AuditEvent.select().count() >= 4
    return issued.certificate


def cli(app, *args):
    return app.test_cli_runner().invoke(args=["audit", *args])


def verify(app, *args):
    result = cli(app, "verify", *args)
    return result.exit_code, result.output


def rechain_from(first_id: int) -> None:
    """What someone who can write the database does to hide an edit: recompute every hash
    from the edited event on, so that the chain is consistent again."""
    previous = AuditEvent.get_by_id(first_id - 1).hash
    for event in AuditEvent.select().where(AuditEvent.id >= first_id).order_by(AuditEvent.id):
        event.prev_hash = previous
        event.hash = audit._digest(previous, event.at, event.actor, event.action, event.target,
                                   event.details)
        AuditEvent.update(prev_hash=event.prev_hash, hash=event.hash).where(
            AuditEvent.id == event.id).execute()
        previous = event.hash


def test_a_checkpoint_signs_the_head_and_verify_says_the_trail_holds(app, trail):
    result = cli(app, "checkpoint")
    head = AuditEvent.select().order_by(AuditEvent.id.desc()).first()
    assert result.exit_code == 0 and f"at event {head.id}" in result.output
    assert "No events since" in cli(app, "checkpoint").output     # nothing new: no second one
    code, output = verify(app)
    assert code == 0
    assert f"holds: {AuditEvent.select().count()} events" in output
    assert f"latest checkpoint at event {head.id}" in output


def test_the_published_checkpoint_verifies_with_openssl(app, web, trail, tmp_path):
    assert web.get("/pki/audit-checkpoint").status_code == 404      # none signed yet
    checkpoints.sign()
    response = web.get("/pki/audit-checkpoint")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    document = response.get_data(as_text=True)
    signed = pki_checkpoint.read_document(document)
    head = AuditEvent.select().order_by(AuditEvent.id.desc()).first()
    assert (signed.event_id, signed.event_hash) == (head.id, head.hash)
    (tmp_path / "statement.txt").write_text(signed.statement)
    (tmp_path / "sig.bin").write_bytes(signed.signature)
    (tmp_path / "issuing.pub").write_bytes(ca_store.load_ca().issuing_cert.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    checked = subprocess.run(["openssl", "dgst", "-sha256", "-verify", "issuing.pub", "-signature",
                              "sig.bin", "statement.txt"], cwd=tmp_path, capture_output=True, text=True)
    assert checked.returncode == 0 and "Verified OK" in checked.stdout
    (tmp_path / "statement.txt").write_text(signed.statement.replace(head.hash, "0" * 64))
    forged = subprocess.run(["openssl", "dgst", "-sha256", "-verify", "issuing.pub", "-signature",
                             "sig.bin", "statement.txt"], cwd=tmp_path, capture_output=True, text=True)
    assert forged.returncode != 0


def test_one_events_details_edited(app, trail):
    checkpoints.sign()
    victim = AuditEvent.select().where(AuditEvent.action == "certificate.revoke").get()
    AuditEvent.update(details=victim.details.replace("key-compromise", "superseded")).where(
        AuditEvent.id == victim.id).execute()
    code, output = verify(app)
    assert code == 1 and f"fails at event {victim.id}:" in output


def test_an_event_deleted_in_the_middle(app, trail):
    checkpoints.sign()
    middle = AuditEvent.select().order_by(AuditEvent.id).offset(1).first()
    AuditEvent.delete().where(AuditEvent.id == middle.id).execute()
    code, output = verify(app)
    assert code == 1 and f"fails at event {middle.id + 1}:" in output


def test_events_deleted_from_the_end_back_past_a_checkpoint(app, trail):
    signed = checkpoints.sign()
    AuditEvent.delete().where(AuditEvent.id >= signed.event_id - 2).execute()
    assert audit.verify_chain() is None                  # what is left chains perfectly
    code, output = verify(app)
    assert code == 1 and f"fails at event {signed.event_id}:" in output
    assert "events were deleted" in output


def test_the_whole_chain_rewritten_consistently(app, trail):
    signed = checkpoints.sign()
    victim = AuditEvent.select().where(AuditEvent.action == "certificate.revoke").get()
    AuditEvent.update(details=victim.details.replace("key-compromise", "superseded")).where(
        AuditEvent.id == victim.id).execute()
    rechain_from(victim.id)
    assert audit.verify_chain() is None                  # the chain alone cannot tell
    code, output = verify(app)
    assert code == 1 and f"fails at event {signed.event_id}:" in output
    assert "rewritten" in output


def test_a_rewrite_that_also_removes_the_checkpoints_is_caught_by_a_kept_copy(app, web, trail,
                                                                             tmp_path):
    checkpoints.sign()
    copy = tmp_path / "kept.txt"
    copy.write_text(web.get("/pki/audit-checkpoint").get_data(as_text=True))
    first = AuditEvent.select().order_by(AuditEvent.id).first()
    AuditEvent.update(actor="someone-else").where(AuditEvent.id == first.id).execute()
    AuditEvent.update(prev_hash=audit.GENESIS).where(AuditEvent.id == first.id).execute()
    rechain_from_genesis()
    AuditCheckpoint.delete().execute()
    assert verify(app)[0] == 0                           # the database alone is consistent
    code, output = verify(app, "--copy", str(copy))
    assert code == 1 and "copy 1" in output and "rewritten" in output


def rechain_from_genesis() -> None:
    first = AuditEvent.select().order_by(AuditEvent.id).first()
    AuditEvent.update(hash=audit._digest(audit.GENESIS, first.at, first.actor, first.action,
                                         first.target, first.details)).where(
        AuditEvent.id == first.id).execute()
    rechain_from(first.id + 1)


def test_a_forged_checkpoint_is_not_taken(app, trail, tmp_path):
    signed = checkpoints.sign()
    forged = signed.statement.replace(signed.event_hash, "f" * 64)
    AuditCheckpoint.update(statement=forged).where(AuditCheckpoint.id == signed.id).execute()
    code, output = verify(app)
    assert code == 1 and "not signed by the issuing CA" in output
    junk = tmp_path / "junk.txt"
    junk.write_text("hello")
    result = cli(app, "verify", "--copy", str(junk))
    assert result.exit_code == 1 and "not a checkpoint" in result.output


def test_jobs_run_signs_a_checkpoint_after_its_work(app, trail):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["jobs", "run"])
    assert result.exit_code == 0 and "Signed an audit checkpoint at event" in result.output
    assert checkpoints.latest().event_id == AuditEvent.select().order_by(AuditEvent.id.desc()).first().id
    again = runner.invoke(args=["jobs", "run"])
    assert "audit checkpoint" not in again.output                 # nothing new to seal


def test_audit_show_filters_by_target_and_prints_json(app, trail):
    result = cli(app, "show", "--target", trail.serial, "--json")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["action"] for line in lines] == ["certificate.issue", "certificate.revoke"]
    assert lines[1]["details"]["reason"] == "key-compromise"
    assert cli(app, "show", "--since", "2999-01-01").output == ""


def test_an_append_that_loses_a_race_appends_after_the_winner(app, demo, monkeypatch):
    """We read the last event; another writer (a second host on PostgreSQL) appends after it
    and commits before our insert: ours goes after theirs, and the chain holds."""
    read_by_us = audit.head()
    at = audit.clock.now()
    winner = AuditEvent.create(at=at, actor="other-host", action="race.won", target=None,
                               details="{}", prev_hash=read_by_us.hash,
                               hash=audit._digest(read_by_us.hash, at, "other-host", "race.won",
                                                  None, "{}"))
    reads = iter([read_by_us])
    real_head = audit.head
    monkeypatch.setattr(audit, "head", lambda: next(reads, None) or real_head())
    with audit.db.atomic():
        ours = audit.record("test", "race.lost")
    assert ours.prev_hash == winner.hash
    assert audit.verify_chain() is None


def test_ca_status_says_where_the_keys_are_and_what_was_signed(app, trail, signer_backend):
    checkpoints.sign()
    result = app.test_cli_runner().invoke(args=["ca", "status"])
    assert result.exit_code == 0, result.output
    keys = ca_store.load_ca()
    assert f"Signer backend: {signer_backend}" in result.output
    for cert in (keys.root_cert, keys.issuing_cert, keys.ocsp_cert):
        assert pki_ca.fingerprint(cert) in result.output
    # The revocation re-signed its partition's CRL, and the full one is left to its next
    # download or `jobs run`; OCSP answers, one per CertID hash, are signed at the issuance
    # and at the revocation.
    assert "Signed by the online keys: 1 certificates, 1 CRLs, 4 OCSP responses, " \
           "1 audit checkpoints" in result.output
    assert "certificates whose status change is not on every CRL yet: 1" in result.output
    assert f"latest checkpoint at event {checkpoints.latest().event_id}" in result.output
    assert "CRL: none published yet" in result.output        # the full CRL: nobody asked yet
    assert "Interrupted issuances waiting for jobs run: 0" in result.output
