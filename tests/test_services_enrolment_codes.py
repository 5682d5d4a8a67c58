"""Reference numbers and authorisation codes (참조번호·인가코드) for enrolling with a CMP client:
given once, for one certificate of one type, for ten minutes, void after five wrong tries."""
import re

import pytest

from models import AuditEvent, EnrolmentCode, db
from services import enrolment_codes, jobs
from services.errors import DomainError
from tests.conftest import move_clock


def test_a_pair_is_given_once_and_its_code_is_kept_sealed(demo):
    given = enrolment_codes.give(demo["person"], "personal-banking", "customer:P0000001")
    assert re.fullmatch(r"\d{8}", given.reference)
    assert re.fullmatch(f"[{enrolment_codes.CODE_ALPHABET}]{{12}}", given.code)
    assert given.code_groups == [given.code[:4], given.code[4:8], given.code[8:]]
    stored = EnrolmentCode.get(EnrolmentCode.reference == given.reference)
    assert given.code not in stored.code_sealed
    assert (stored.expires_at - stored.created_at).total_seconds() == 600
    event = AuditEvent.get(AuditEvent.action == "enrolment_code.give")
    assert event.target == given.reference and given.code not in event.details
    pair = enrolment_codes.open_pair(given.reference)
    assert pair.code == given.code.encode() and pair.record.customer.code == "P0000001"


def test_a_pair_works_once(demo):
    given = enrolment_codes.give(demo["person"], "personal-banking", "customer:P0000001")
    pair = enrolment_codes.open_pair(given.reference)
    with db.atomic():
        enrolment_codes.use(pair)
    for attempt in (lambda: enrolment_codes.open_pair(given.reference),
                    lambda: enrolment_codes.use(pair)):
        with pytest.raises(DomainError) as refused:
            attempt()
        assert refused.value.code == "enrolment_code_unknown" and refused.value.status == 401


def test_a_newer_pair_for_the_same_type_stops_the_older(demo):
    first = enrolment_codes.give(demo["person"], "personal-banking", "customer:P0000001")
    other_type = enrolment_codes.give(demo["person"], "personal-general", "customer:P0000001")
    second = enrolment_codes.give(demo["person"], "personal-banking", "operator:kim.ra")
    with pytest.raises(DomainError):
        enrolment_codes.open_pair(first.reference)
    assert enrolment_codes.open_pair(second.reference)
    assert enrolment_codes.open_pair(other_type.reference)


def test_five_wrong_codes_void_the_pair(demo):
    given = enrolment_codes.give(demo["person"], "personal-banking", "customer:P0000001")
    for _ in range(enrolment_codes.MAX_WRONG - 1):
        enrolment_codes.wrong_code(enrolment_codes.open_pair(given.reference), "cmp:x")
    pair = enrolment_codes.open_pair(given.reference)      # the fifth try may still come
    enrolment_codes.wrong_code(pair, "cmp:x")
    with pytest.raises(DomainError):
        enrolment_codes.open_pair(given.reference)
    with pytest.raises(DomainError), db.atomic():
        enrolment_codes.use(pair)
    wrong = AuditEvent.select().where(AuditEvent.action == "enrolment_code.wrong")
    assert [event.details for event in wrong][-1].endswith('"void": true}')


def test_a_pair_runs_out_after_ten_minutes_and_is_purged_a_day_later(demo):
    given = enrolment_codes.give(demo["person"], "personal-banking", "customer:P0000001")
    move_clock(minutes=10)
    with pytest.raises(DomainError):
        enrolment_codes.open_pair(given.reference)
    move_clock(days=1, minutes=1)
    assert "Purged 1 ended reference numbers." in jobs.run()
    assert EnrolmentCode.select().count() == 0


def test_the_web_flow_rules_decide_who_gets_a_pair(demo):
    for customer, type_id, code in ((demo["business"], "business-general", "request_needed"),
                                    (demo["person"], "business-general", "cert_type_not_for_you")):
        with pytest.raises(DomainError) as refused:
            enrolment_codes.give(customer, type_id, "operator:kim.ra")
        assert refused.value.code == code
    assert EnrolmentCode.select().count() == 0


def test_an_officer_gives_a_pair_from_the_command_line(app, demo):
    runner = app.test_cli_runner()
    done = runner.invoke(args=["cmp", "authorize", "--customer", "P0000001", "--type",
                               "personal-banking", "--operator", "kim.ra"])
    assert done.exit_code == 0, done.output
    reference = re.search(r"Reference number:\s+(\d{8})", done.output).group(1)
    groups = re.search(r"Authorisation code: (\w{4}) (\w{4}) (\w{4})", done.output).groups()
    assert enrolment_codes.open_pair(reference).code == "".join(groups).encode()
    assert "5 wrong tries make it void" in done.output
    assert AuditEvent.get(AuditEvent.action == "enrolment_code.give").actor == "operator:kim.ra"
    unknown = runner.invoke(args=["cmp", "authorize", "--customer", "P9999999", "--type",
                                  "personal-banking"])
    assert unknown.exit_code == 1 and "P9999999" in unknown.output
    assert "Reference number" not in unknown.output
