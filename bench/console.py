"""The operators' console at scale: how long its pages take with 50,000 customers, 100,000
certificates, 300,000 audit events and a busy outbox (issue 11: median under 50 ms).

Run by hand from the repository root (never in CI, never by pytest):

    .venv/bin/python bench/console.py [--customers 50000] [--certificates 100000]
        [--events 300000] [--notifications 30000] [--runs 30] [--keep]

What it does:
  1. a temporary instance folder: `ca init`, `demo seed` and one `certs issue` for P0000001,
     through the real CLI;
  2. an app on it (`create_app()`, console on) and, in one transaction per table, rows
     bulk-inserted with peewee's insert_many:
       customers      4 in 5 personal; Korean names drawn so that common ones repeat, unique
                      mobile numbers, RRNs with real birth dates and their keyed hash
                      (customers.rrn_lookup), business numbers and representatives; a few
                      with self-service stopped;
       certificates   serials drawn like pki.serials.random_serial; 80% valid, 17% revoked,
                      3% suspended; issued over two years, valid one, so about 4% expire
                      within 30 days. Every row reuses the DER of the certificate of step 1;
       requests       business certificate requests, 40 waiting and 1,000 decided;
       notifications  most sent, the rest queued or failed (what the outbox lists);
       audit events   a mix of customers', operators', clients' and jobs' actions over the
                      past year, continuing the real chain with services.audit's own digest,
                      checked with audit.verify_chain() afterwards. The few events of the
                      CLI set-up come first in the trail but are stamped at set-up time: the
                      only ones out of time order (a filter by date leaves them out);
  3. an ra-officer and an auditor made with services.operators, each logging in through the
     console's pages (password, then a TOTP code from pyotp);
  4. each page fetched with Flask's test client: 3 warm-up GETs, then --runs timed ones;
     median and p95 (nearest rank) in ms, PASS when the median is under 50 ms.

For reference, the SELECTs one request of the page ran (caught from peewee's log, parameters
written in as literals) are run again by the `sqlite3` CLI, 20 times over in one process;
the table shows how many there were and what one pass took (the CLI's start-up subtracted).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyotp
from _common import clean_up, flask, instance_env, issue, make_instance
from cryptography.hazmat.primitives import serialization
from peewee import chunked, fn

BUDGET_MS = 50
BATCH = 1000            # rows per INSERT: well under SQLite's 32,766 parameters
WARM_UP = 3
PASSWORD = "bench lantern orbit 42 maple"

SURNAMES = {"김": 215, "이": 147, "박": 84, "최": 47, "정": 43, "강": 24, "조": 21, "윤": 21,
            "장": 20, "임": 17, "한": 15, "오": 15, "서": 15, "신": 14, "권": 14, "황": 14,
            "안": 13, "송": 13, "류": 12, "전": 11, "홍": 11, "고": 9, "문": 9, "양": 8}
POPULAR_GIVEN = ["민준", "서연", "지훈", "서윤", "도윤", "지우", "하준", "하은", "주원", "민서",
                 "지호", "수아", "예준", "지유", "시우", "윤서", "준서", "채원", "현우", "지민",
                 "영수", "영희", "정호", "미경", "성민", "은정", "상훈", "지영", "동현", "혜진"]
SYLLABLES = ["민", "서", "지", "현", "준", "우", "영", "수", "하", "은", "도", "예", "윤", "성",
             "진", "호", "재", "연", "유", "원", "동", "혁", "희", "경", "태", "승", "소", "주"]
COMPANY_WORDS = ["한빛", "대한", "미래", "세종", "동방", "우리", "새한", "태평양", "삼정", "금강",
                 "한결", "푸른", "다온", "누리", "가온", "한울", "서해", "청솔"]
COMPANY_TRADES = ["상사", "물산", "전자", "건설", "식품", "무역", "테크", "산업", "유통", "제약",
                  "정보통신", "에너지", "물류", "화학", "기계"]
OPERATORS = ["kim.ra", "lee.ra", "park.support", "choi.support", "jung.support", "kang.audit"]
REVOCATION_REASONS = {"superseded": 70, "key-compromise": 10, "cessation-of-operation": 10,
                      "affiliation-changed": 5, "unspecified": 5}
PURPOSES = {"verification_code": 40, "expiry_reminder": 25, "renewal_ready": 8, "lockout": 4,
            "request_approved": 4, "request_rejected": 1, "suspended": 6, "unlocked": 2,
            "authenticator_changed": 10}


def weighted(rng: random.Random, table: dict):
    return rng.choices(list(table), weights=list(table.values()))[0]


def person_name(rng: random.Random) -> str:
    given = (rng.choice(POPULAR_GIVEN) if rng.random() < 0.4
             else rng.choice(SYLLABLES) + rng.choice(SYLLABLES))
    return weighted(rng, SURNAMES) + given


def company_name(rng: random.Random) -> str:
    core = rng.choice(COMPANY_WORDS) + rng.choice(COMPANY_TRADES)
    return rng.choice([f"(주){core}", f"{core}(주)", f"주식회사 {core}", core])


def random_rrn(rng: random.Random) -> str:
    born = dt.date(1945, 1, 1) + dt.timedelta(days=rng.randrange(60 * 365))
    sex = rng.choice("12") if born.year < 2000 else rng.choice("34")
    return f"{born:%y%m%d}{sex}{rng.randrange(10**6):06d}"


def spread(rng: random.Random, count: int, start: dt.datetime, end: dt.datetime) -> list:
    """`count` moments between start and end, in order (rows are appended as time goes)."""
    seconds = (end - start).total_seconds()
    return sorted(start + dt.timedelta(seconds=rng.random() * seconds) for _ in range(count))


def insert(model, rows: list[dict]) -> None:
    from models import db
    with db.atomic():
        for batch in chunked(rows, BATCH):
            model.insert_many(batch).execute()


# -- the rows ------------------------------------------------------------------------------

def seed_customers(rng: random.Random, count: int, now: dt.datetime) -> dict:
    """Insert the customers; return what the searches need to know about them."""
    from models import Customer
    from services import customers
    taken_rrns = {"9001011234567", "8002022345678"}            # the demo customers'
    phones = rng.sample(range(10**7, 10**8), count)           # 010-1000-0000 and up: not the demo's
    business_numbers = iter(n for n in rng.sample(range(1_010_000_000, 9_999_999_999), count)
                            if n != 1_234_567_890)
    numbers = {"personal": 1, "business": 1}                  # P0000001 and B0000001 exist
    rows, rrns = [], {}
    for created in spread(rng, count, now - dt.timedelta(days=3 * 365), now):
        kind = "business" if rng.random() < 0.2 else "personal"
        numbers[kind] += 1
        code = f"{kind[0].upper()}{numbers[kind]:07d}"
        rrn = random_rrn(rng)
        while rrn in taken_rrns:
            rrn = random_rrn(rng)
        taken_rrns.add(rrn)
        rrns[code] = rrn
        person = person_name(rng)
        row = {"code": code, "kind": kind, "name": person, "representative": None,
               "business_number": None, "rrn_hmac": customers.rrn_lookup(rrn),
               "rrn_masked": customers.mask_rrn(rrn), "phone": f"010{phones[len(rows)]}",
               "email": f"c{len(rows)}@example.kr" if rng.random() < 0.3 else None,
               "language": "en" if rng.random() < 0.05 else "ko", "created_at": created,
               "self_service_suspended_at": (now - dt.timedelta(hours=rng.randrange(1, 500))
                                             if rng.random() < 0.002 else None)}
        if kind == "business":
            row.update(name=company_name(rng), representative=person,
                       business_number=f"{next(business_numbers):010d}")
        rows.append(row)
    insert(Customer, rows)
    names = Counter(row["name"] for row in rows if row["kind"] == "personal")
    personal = [row for row in rows if row["kind"] == "personal"]
    business = [row for row in rows if row["kind"] == "business"]
    someone = rng.choice(personal)
    company = rng.choice(business)
    ids = {c.code: c.id for c in Customer.select(Customer.id, Customer.code)}
    return {"ids": ids, "rows": rows, "common_name": names.most_common(1)[0],
            "code": someone["code"], "phone": someone["phone"], "rrn": rrns[someone["code"]],
            "business_number": company["business_number"]}


def seed_certificates(rng: random.Random, count: int, now: dt.datetime, people: dict,
                      der: bytes) -> list[str]:
    from models import Certificate
    from pki.profile import CERT_TYPES
    from pki.serials import random_serial, serial_hex
    holders = {"personal": [r for r in people["rows"] if r["kind"] == "personal"],
               "business": [r for r in people["rows"] if r["kind"] == "business"]}
    rows, serials = [], set()
    for issued in spread(rng, count, now - dt.timedelta(days=730), now):
        kind = "business" if rng.random() < 0.2 else "personal"
        holder = rng.choice(holders[kind])
        cert_type = (rng.choices(["personal-banking", "personal-general"], [3, 1])[0]
                     if kind == "personal"
                     else rng.choices(["business-banking", "business-general"], [7, 3])[0])
        serial = serial_hex(random_serial())
        serials.add(serial)
        drawn = rng.random()
        state = "valid" if drawn < 0.80 else "revoked" if drawn < 0.97 else "suspended"
        changed = reason = None
        if state != "valid":
            changed = issued + (now - issued) * rng.random()
            reason = (weighted(rng, REVOCATION_REASONS) if state == "revoked"
                      else "certificate-hold")
        unique = f"0011{issued + dt.timedelta(hours=9):%Y%m%d%H%M%S}{rng.randrange(10**4):04d}"
        rows.append({
            "serial": serial, "customer": people["ids"][holder["code"]],
            "cert_type": cert_type, "status": state,
            "subject": f"CN={holder['name']}(){unique},OU=CCBANK,"
                       f"OU={CERT_TYPES[cert_type].ou},O=CertCenter,C=KR",
            "not_before": issued, "not_after": issued + dt.timedelta(days=365), "der": der,
            "key_generated_here": rng.random() < 0.7, "revoked_at": changed,
            "revocation_reason": reason, "status_changed_at": changed, "created_at": issued,
            "auto_renew_days": rng.choice([7, 14, 30]) if rng.random() < 0.1 else None})
    if len(serials) != count:
        raise SystemExit("two serials drawn alike: run again")
    insert(Certificate, rows)
    return [row["serial"] for row in rows]


def seed_requests(rng: random.Random, now: dt.datetime, people: dict) -> None:
    """1,040 business requests over the past year: the last 40 still wait for a decision."""
    from models import CertificateRequest
    business = [people["ids"][r["code"]] for r in people["rows"] if r["kind"] == "business"]
    rows = []
    for n, asked in enumerate(spread(rng, 1040, now - dt.timedelta(days=365), now)):
        state = ("requested" if n >= 1000
                 else rng.choices(["issued", "approved", "rejected"], [8, 1, 1])[0])
        decided = state != "requested"
        rows.append({"customer": rng.choice(business),
                     "cert_type": rng.choice(["business-banking", "business-general"]),
                     "status": state,
                     "reason": "서류가 맞지 않습니다" if state == "rejected" else None,
                     "decided_by": rng.choice(OPERATORS[:2]) if decided else None,
                     "decided_at": asked + dt.timedelta(hours=2) if decided else None,
                     "created_at": asked})
    insert(CertificateRequest, rows)


def seed_notifications(rng: random.Random, count: int, now: dt.datetime,
                       people: dict) -> None:
    from models import Notification
    from services import secrets
    everyone = people["rows"]
    # Only a code's message is sealed; one sealed body serves every such row.
    sealed_body = secrets.encrypt("outbox", "[CertCenter] 인증번호 [123456]".encode())
    rows = []
    for created in spread(rng, count, now - dt.timedelta(days=90), now):
        holder = rng.choice(everyone)
        purpose = weighted(rng, PURPOSES)
        channel = "email" if holder["email"] and rng.random() < 0.5 else "sms"
        drawn = rng.random()
        state = "sent" if drawn < 0.85 else "failed" if drawn < 0.93 else "queued"
        sealed = purpose == "verification_code"
        body = ("" if state == "sent" else sealed_body) if sealed else \
            f"[CertCenter] {holder['name']}님, 알림: {purpose}"
        rows.append({"customer": people["ids"][holder["code"]], "channel": channel,
                     "recipient": holder["email"] if channel == "email" else holder["phone"],
                     "purpose": purpose, "subject": "CertCenter", "body": body,
                     "sealed": sealed, "language": holder["language"], "status": state,
                     "tries": {"sent": 1, "failed": rng.randint(1, 3), "queued": 0}[state],
                     "created_at": created,
                     "sent_at": created + dt.timedelta(seconds=2) if state == "sent" else None})
    insert(Notification, rows)


def audit_mix(rng: random.Random, people: dict, serials: list[str]):
    """A function drawing one event: (actor, action, target, details)."""
    codes = list(people["ids"])

    def customer():
        return f"customer:{rng.choice(codes)}"

    def client():
        return f"client:{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"

    def operator(who=OPERATORS):
        return f"operator:{rng.choice(who)}"

    mix = [  # weight, actor, action, target, details
        (20, customer, "verify.passed", "code", lambda: {"method": rng.choice(["totp", "sms"])}),
        (10, customer, "verify.code_sent", "code", dict),
        (6, client, "verify.failed", "code", lambda: {"step": "identity"}),
        (8, customer, "certificate.issue", "serial",
         lambda: {"type": rng.choice(["personal-banking", "business-banking"])}),
        (10, customer, "possession.proved", "serial", dict),
        (8, customer, "download.taken", "serial", lambda: {"kind": rng.choice(["npki", "p12"])}),
        (8, lambda: "system:jobs", "reminder.sent", "serial",
         lambda: {"days_before": rng.choice([30, 7, 1])}),
        (3, customer, "certificate.renew", "serial", dict),
        (3, customer, "certificate.revoke", "serial", lambda: {"reason": "superseded"}),
        (1, operator, "certificate.suspend", "serial", lambda: {"note": "고객 전화 요청"}),
        (2, customer, "transfer.send", "code", dict),
        (2, customer, "transfer.receive", "code", dict),
        (2, customer, "totp.enrolled", "code", dict),
        (3, lambda: "system:import", "customer.add", "code", lambda: {"kind": "personal"}),
        (0.5, customer, "customer.locked", "code", dict),
        (0.2, lambda: operator(OPERATORS[:5]), "customer.unlocked", "code", dict),
        (1, lambda: "system:jobs", "download.purged", None, lambda: {"count": rng.randint(1, 40)}),
        (1, lambda: "system:jobs", "transfer.purged", None, lambda: {"count": rng.randint(1, 5)}),
        (1, operator, "operator.login", "self", dict),
        (0.5, operator, "operator.logout", "self", dict),
        (0.2, client, "operator.login_failed", "name", dict),
        (0.5, customer, "request.create", "code", lambda: {"type": "business-banking"}),
        (0.3, lambda: operator(OPERATORS[:2]), "request.approve", "code", dict),
        (0.2, customer, "certificate.foreign_attempt", "serial", dict),
        (0.2, lambda: operator(OPERATORS[:5]), "outbox.retry", None,
         lambda: {"sent": rng.randint(0, 9), "failed": rng.randint(0, 3)}),
        (1, customer, "registration.add", "code", dict),
    ]
    weights = [entry[0] for entry in mix]

    def draw():
        _w, actor_of, action, target_kind, details_of = rng.choices(mix, weights)[0]
        actor = actor_of()
        if target_kind == "code":
            target = actor.split(":", 1)[1] if actor.startswith("customer:") else rng.choice(codes)
        elif target_kind == "serial":
            target = rng.choice(serials)
        elif target_kind == "self":
            target = actor.split(":", 1)[1]
        elif target_kind == "name":
            target = rng.choice(OPERATORS)
        else:
            target = None
        return actor, action, target, details_of()
    return draw


def seed_audit(rng: random.Random, count: int, now: dt.datetime, people: dict,
               serials: list[str]) -> int:
    """Events appended after the real ones, chained the way services.audit.record chains
    them (its own digest, so a change there cannot make this chain differ). Returns the
    first one's id."""
    from models import AuditEvent
    from services import audit
    draw = audit_mix(rng, people, serials)
    last = audit.head()
    prev_hash = last.hash if last else audit.GENESIS
    rows = []
    for at in spread(rng, count, now - dt.timedelta(days=365), now):
        actor, action, target, details = draw()
        body = json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
        digest = audit._digest(prev_hash, at, actor, action, target, body)
        rows.append({"at": at, "actor": actor, "action": action, "target": target,
                     "details": body, "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    insert(AuditEvent, rows)
    return (last.id if last else 0) + 1


def make_operator(name: str, role: str) -> str:
    """An enrolled operator; returns their authenticator's secret. The enrolment code is the
    previous time step's, so that the login's code (this step's) is not a replay."""
    from services import clock, operators
    _operator, link = operators.add_operator(name, role, "system:bench")
    secret = pyotp.random_base32()
    operators.complete_enrolment(link.rsplit("/", 1)[1], PASSWORD, secret,
                                 pyotp.TOTP(secret).at(clock.timestamp() - 30))
    return secret


def csrf_token(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))[1]


def log_in(app, name: str, secret: str):
    """A test client signed in to the console through its pages."""
    client = app.test_client()
    step = client.post("/ops/login", data={"name": name, "password": PASSWORD,
                                           "csrf_token": csrf_token(client.get("/ops/login"))})
    if not (step.location or "").endswith("/ops/login/code"):
        raise SystemExit(f"{name}: the password step failed ({step.status})")
    done = client.post("/ops/login/code", data={
        "code": pyotp.TOTP(secret).now(),
        "csrf_token": csrf_token(client.get("/ops/login/code"))})
    if not (done.location or "").endswith("/ops/"):
        raise SystemExit(f"{name}: the code step failed ({done.status})")
    return client


# -- timing --------------------------------------------------------------------------------

class Statements(logging.Handler):
    """The SELECTs peewee runs while attached (it logs each as (sql, params))."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record):
        sql, params = record.msg
        if sql.lstrip().upper().startswith("SELECT"):
            self.seen.append(literal_sql(sql, params))


def literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    return "'" + str(value).replace("'", "''") + "'"     # str() of a datetime is how sqlite3 stores it


def literal_sql(sql: str, params) -> str:
    parts = sql.split("?")                  # peewee quotes names with "…", values are all ?
    return "".join(part + (literal(params[i]) if i < len(params) else "")
                   for i, part in enumerate(parts))


def sqlite_cli_ms(database: Path, statements: list[str], repeat: int = 20) -> float:
    """What one pass over the statements takes in the sqlite3 CLI, in ms (start-up excluded)."""
    def run(script: str) -> float:
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(["sqlite3", "-batch", "-readonly", str(database)], input=script,
                           text=True, capture_output=True, check=True)
            best = min(best, time.perf_counter() - start)
        return best
    body = "".join(s + ";\n" for s in statements) * repeat
    return max(0.0, (run(".output /dev/null\n" + body) - run(".output /dev/null\n"))) \
        * 1000 / repeat


def time_page(client, url: str, runs: int, expect: str | None) -> list[float]:
    for _ in range(WARM_UP):
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"GET {url}: {response.status}")
        if expect and expect not in response.get_data(as_text=True):
            raise SystemExit(f"GET {url}: {expect!r} is not on the page")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        client.get(url).close()
        times.append((time.perf_counter() - start) * 1000)
    return times


def percentile(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--notifications", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    tmp = Path(tempfile.mkdtemp(prefix="certcenter-bench-console-"))
    try:
        print(f"Setting up an instance in {tmp} …", flush=True)
        inst = make_instance(tmp / "instance")
        flask(inst.folder, "demo", "seed")
        der = issue(inst, tmp / "issued").public_bytes(serialization.Encoding.DER)
        os.environ.update(instance_env(inst.folder), CERTCENTER_OPS="1")
        from app import create_app
        app = create_app()
        from models import AuditEvent, Notification, db
        from services import audit, clock

        with app.app_context(), db.connection_context():
            now = clock.now()
            steps = []

            def step(what, run, *more):
                start = time.perf_counter()
                print(f"  {what} …", flush=True)
                result = run(rng, *more)
                steps.append((what, time.perf_counter() - start))
                return result
            print("Inserting rows:")
            people = step(f"{args.customers:,} customers", seed_customers, args.customers, now)
            serials = step(f"{args.certificates:,} certificates", seed_certificates,
                           args.certificates, now, people, der)
            step("1,040 business requests", seed_requests, now, people)
            step(f"{args.notifications:,} notifications", seed_notifications,
                 args.notifications, now, people)
            first_seeded = step(f"{args.events:,} audit events", seed_audit, args.events, now,
                                people, serials)
            start = time.perf_counter()
            broken = audit.verify_chain()
            steps.append(("audit.verify_chain()", time.perf_counter() - start))
            if broken is not None:
                raise SystemExit(f"the audit chain breaks at event {broken}")
            for what, seconds in steps:
                print(f"  {what:<28}{seconds:7.1f} s")

            officer_secret = make_operator("bench.ra", "ra-officer")
            auditor_secret = make_operator("bench.audit", "auditor")

            # What the pages are asked for.
            events = AuditEvent.select().count()
            deep_event = AuditEvent.select(AuditEvent.id).order_by(AuditEvent.id).offset(
                events // 10).first().id
            undelivered = (Notification.select(Notification.id)
                           .where(Notification.status.in_(["queued", "failed"]))
                           .order_by(Notification.id))
            deep_note = undelivered.offset(undelivered.count() // 10).first().id
            busiest_serial = (AuditEvent.select(AuditEvent.target).where(
                AuditEvent.action == "possession.proved").order_by(AuditEvent.id.desc())
                .first().target)
            name, name_count = people["common_name"]
            rrn, number, phone = people["rrn"], people["business_number"], people["phone"]
            serial_query = format(int(serials[len(serials) // 2], 16), "X")
            since = f"{now - dt.timedelta(days=7):%Y-%m-%d}"
            # The last page of that listing: only its 10 oldest events are left below `before`,
            # and every older event lies beyond them.
            since_last = AuditEvent.select(fn.MIN(AuditEvent.id)).where(
                (AuditEvent.id >= first_seeded)
                & (AuditEvent.at >= dt.datetime.strptime(since, "%Y-%m-%d"))).scalar() + 10

        # Requests run outside any app context, as they do when served: one left pushed would
        # be shared by every request (its g, and the CSRF token and language cached there).
        officer = log_in(app, "bench.ra", officer_secret)
        auditor = log_in(app, "bench.audit", auditor_secret)
        pages = [  # label, client, url, text the page must show
            ("dashboard", officer, "/ops/", None),
            ("search: customer code", officer, f"/ops/search?q={people['code']}", people["code"]),
            (f"search: name ({name_count} share it)", officer, f"/ops/search?q={quote(name)}", name),
            ("search: phone", officer, f"/ops/search?q={phone[:3]}-{phone[3:7]}-{phone[7:]}",
             "/ops/customers/"),
            ("search: full RRN", officer, f"/ops/search?q={rrn[:6]}-{rrn[6:]}",
             people["code"]),
            ("search: business number", officer,
             f"/ops/search?q={number[:3]}-{number[3:5]}-{number[5:]}", "/ops/customers/B"),
            ("search: serial (upper case)", officer, f"/ops/search?q={serial_query}",
             serial_query.lower()),
            ("customer page", officer, f"/ops/customers/{people['code']}", people["code"]),
            ("certificate page", officer, f"/ops/certificates/{busiest_serial}",
             busiest_serial),
            ("business requests", officer, "/ops/requests", None),
            ("audit: first page", auditor, "/ops/audit", None),
            ("audit: deep page", auditor, f"/ops/audit?before={deep_event}", None),
            ("audit: actor, an operator", auditor, "/ops/audit?actor=operator:kim.ra",
             "operator:kim.ra"),
            ("audit: actor, a customer", auditor, f"/ops/audit?actor=customer:{people['code']}",
             f"customer:{people['code']}"),
            ("audit: action, common", auditor, "/ops/audit?action=certificate.revoke",
             "certificate.revoke"),
            ("audit: action, rare", auditor, "/ops/audit?action=customer.unlocked",
             "customer.unlocked"),
            ("audit: action, rare, deep page", auditor,
             f"/ops/audit?action=customer.unlocked&before={deep_event}", None),
            ("audit: target", auditor, f"/ops/audit?target={people['code']}", people["code"]),
            ("audit: since, 7 days", auditor, f"/ops/audit?since={since}", None),
            ("audit: since, last page", auditor, f"/ops/audit?since={since}&before={since_last}",
             None),
            ("outbox: first page", officer, "/ops/outbox", None),
            ("outbox: deep page", officer, f"/ops/outbox?before={deep_note}", None),
        ]
        database = inst.folder / "certcenter.db"
        cli = shutil.which("sqlite3")
        peewee_log = logging.getLogger("peewee")
        results = []
        print(f"\nTiming {len(pages)} pages, {args.runs} runs each after {WARM_UP} warm-up …",
              flush=True)
        for label, client, url, expect in pages:
            times = time_page(client, url, args.runs, expect)
            caught = Statements()
            peewee_log.addHandler(caught)
            peewee_log.setLevel(logging.DEBUG)
            client.get(url).close()
            peewee_log.removeHandler(caught)
            sql_ms = sqlite_cli_ms(database, caught.seen) if cli else None
            results.append((label, statistics.median(times), percentile(times, 0.95),
                            len(caught.seen), sql_ms))

        print()
        print(f"Operators' console, {args.customers:,} customers, {args.certificates:,} "
              f"certificates, {events:,} audit events, {args.notifications:,} notifications; "
              f"Flask test client, {args.runs} runs per page; {os.cpu_count()} CPUs")
        print(f"{'page':<34}{'median ms':>10}{'p95 ms':>9}  {'< ' + str(BUDGET_MS) + ' ms':<6}"
              f"{'SELECTs':>8}{'sqlite3 ms':>11}")
        for label, median, p95, count, sql_ms in results:
            verdict = "PASS" if median < BUDGET_MS else "FAIL"
            cli_text = f"{sql_ms:.2f}" if sql_ms is not None else "-"
            print(f"{label:<34}{median:>10.1f}{p95:>9.1f}  {verdict:<6}{count:>8}{cli_text:>11}")
        print("SELECTs: statements one request ran; sqlite3 ms: those statements in the sqlite3 "
              "CLI, one pass")
        failed = sum(median >= BUDGET_MS for _l, median, *_rest in results)
        print(f"{len(results) - failed} of {len(results)} pages under {BUDGET_MS} ms (median)")
    finally:
        clean_up(tmp, args.keep)


if __name__ == "__main__":
    main()
