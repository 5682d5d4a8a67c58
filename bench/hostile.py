"""A hostile client against CertCenter under gunicorn: does every route hold, and do the
attempt limits hold under parallel guessing?

1. A throw-away instance: `ca init`, `demo seed`, one `certs issue` for P0000001 (real NPKI
   files and a .p12 to damage); gunicorn -w 2 on 127.0.0.1 with CERTCENTER_DEMO=1 and
   CERTCENTER_TRUSTED_PROXIES=1, so X-Forwarded-For names the client.
2. Guessing runs against P0000001, each on fresh counters (`customers unlock` in between):
   40 parallel wrong PINs, 40 parallel wrong TOTP codes, 40 parallel wrong SMS codes, then
   1,000 identity guesses (wrong PINs) from 50 addresses. What was *evaluated* is read from
   the database afterwards: `verify.failed` audit events, the SMS code's tries, the lock and
   the lockout text messages.
3. The flood: every route in `app.url_map`, GET and POST, anonymous and signed in (through
   the real identity + TOTP verification), with a real CSRF token and without; every form
   field of every form with every kind of bad value, fields of the wrong kind, repeated
   fields, wrong content types; damaged and hostile uploads; OCSP, CRL and `/lang` abuse.

It prints the totals, every 5xx by route and input kind, the timeouts, latency, and the
guessing figures; it exits 1 if any request got a 5xx or timed out.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import io
import os
import random
import re
import sqlite3
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyotp
from _common import BIN, ROOT, clean_up, flask, free_port, instance_env, issue, make_instance
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from ocsp import start, stop
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc7292

TIMEOUT = 10.0                      # seconds; a slower answer counts as a failure
MB = 1024 * 1024
PERSON = {"name": "홍길동", "rrn": "900101-1234567", "account": "110-123-456789"}
PIN = "1234"

# Every kind of bad value, sent in every field.
BAD_TEXT = {
    "empty": "",
    "huge-1MB": "9" * MB,
    "long-60KB": "가" * 20_000,
    "nul": "12\x0034",
    "control": "홍길동\x07\x1b[31m\r\n",
    "rtl-override": "\u202e1234\u202d",
    "arabic-indic-digits": "١٢٣٤٥٦",
    "full-width-digits": "１２３４５６",
    "big-number": "99999999999999999999",
    "negative": "-1",
    "sql": "' OR 1=1 --",
    "html": "<script>alert(1)</script>",
    "format": "%(code)s %s {0}",
}
INVALID_UTF8 = b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x82"
# A field's plausible value with its digits in another script: the right length, so that it
# gets past a length check to whatever reads the digits next.
OTHER_DIGITS = {"arabic-indic": str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"),
                "full-width": str.maketrans("0123456789", "０１２３４５６７８９")}
BAD_PATH = ["99999999999999999999", "-1", "0", "١٢٣٤٥", "１２３４５６", "%00", "%0d%0a",
            "%ff%fe", "a" * 4000, "..%2f..%2fetc%2fpasswd", "%E2%80%AE"]


@dataclass
class Outcome:
    route: str
    kind: str
    status: int | None              # None: timed out or the connection failed
    seconds: float
    error: str = ""


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)


class Client:
    """Raw HTTP/1.1 over a new connection per request (gunicorn's sync workers close each),
    so that any bytes can be sent: invalid UTF-8, an escaped CR/LF, a wrong content type."""

    def __init__(self, port: int, tally: Tally):
        self.port, self.tally = port, tally

    def send(self, route: str, kind: str, method: str, path: str, body: bytes | None = None,
             headers: dict | None = None, cookies: dict | None = None) -> tuple[int | None, bytes, dict]:
        headers = dict(headers or {})
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            try:
                connection.endheaders(body)
            except BrokenPipeError:
                pass        # it answered (413) and closed before the whole body was sent
            response = connection.getresponse()
            data = response.read()
            status, got = response.status, {k.lower(): v for k, v in response.getheaders()}
            got["set-cookie"] = response.msg.get_all("Set-Cookie") or []
        except (OSError, http.client.HTTPException) as exc:
            self.tally.add(Outcome(route, kind, None, time.perf_counter() - started,
                                   type(exc).__name__))
            return None, b"", {}
        finally:
            connection.close()
        self.tally.add(Outcome(route, kind, status, time.perf_counter() - started))
        return status, data, got


def cookies_from(headers: dict, jar: dict) -> dict:
    for line in headers.get("set-cookie", []):
        name, _, rest = line.partition("=")
        jar[name.strip()] = rest.split(";", 1)[0]
    return jar


def csrf_token(html: bytes) -> str:
    found = re.search(rb'name="csrf_token" value="([^"]+)"', html)
    return found.group(1).decode() if found else ""


def form_body(fields: list[tuple[str, str | bytes]]) -> bytes:
    return "&".join(f"{quote(k)}={quote(v if isinstance(v, bytes) else v.encode())}"
                    for k, v in fields).encode()


def multipart(parts: list[tuple[str, str | bytes, str | None]]) -> tuple[bytes, str]:
    """(name, value, filename or None): a file part when a filename is given."""
    boundary = "hostile" + os.urandom(8).hex()
    out = io.BytesIO()
    for name, value, filename in parts:
        data = value if isinstance(value, bytes) else value.encode()
        out.write(f"--{boundary}\r\n".encode())
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        # A filename may carry undecodable bytes (surrogate escapes): sent as they are.
        out.write(f"Content-Disposition: {disposition}\r\n".encode("utf-8", "surrogateescape"))
        if filename is not None:
            out.write(b"Content-Type: application/octet-stream\r\n")
        out.write(b"\r\n" + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


# -- the instance and the server ------------------------------------------------------------

def form_fields() -> tuple[dict[str, str], set[str]]:
    """Every field of every form, with a plausible value, and which of them are files."""
    from flask_wtf import FlaskForm
    from wtforms.fields import FileField

    from views import forms, registration  # noqa: F401  (defines every form)
    # Nobody's details: the flood's failures must not use up the victim's own limits.
    plausible = {"name": "이몽룡", "rrn": "850101-1000000", "account": "333-000-000001",
                 "business_number": "123-45-67890", "pin": PIN, "code": "123456",
                 "method": "totp", "agree": "y", "cert_type": "personal-banking",
                 "key": "generate", "password": "Wrong!pass42x", "password_again": "Wrong!pass42x",
                 "old_password": "Wrong!pass42x", "serial": "1", "reason": "superseded",
                 "way": "files", "signature": "AAAA", "choice": "keep", "lead_days": "7",
                 "confirm": "yes"}
    text, files = {}, set()
    pending = list(FlaskForm.__subclasses__())
    while pending:
        form = pending.pop()
        pending += form.__subclasses__()
        for name, unbound in vars(form).items():
            if not hasattr(unbound, "field_class"):
                continue
            if issubclass(unbound.field_class, FileField):
                files.add(name)
            else:
                text[name] = plausible.get(name, "x")
    return text, files


def routes(instance: Path) -> list[tuple[str, set[str]]]:
    """(rule, methods) of every route, from the app itself."""
    os.environ.update(instance_env(instance))
    from app import create_app
    app = create_app()
    return sorted((rule.rule, set(rule.methods) - {"HEAD", "OPTIONS"})
                  for rule in app.url_map.iter_rules())


def damaged_p12(p12: bytes) -> bytes:
    """The .p12 with an MD5 MAC of 2^31-1 iterations: checking its password never ends."""
    pfx, _ = decoder.decode(p12, asn1Spec=rfc7292.PFX())
    mac = pfx["macData"]
    mac["mac"]["digestAlgorithm"]["algorithm"] = univ.ObjectIdentifier("1.2.840.113549.2.5")
    mac["mac"]["digest"] = univ.OctetString(b"\x00" * 16)
    mac["iterations"] = 2 ** 31 - 1
    return encoder.encode(pfx)


def uploads(out: Path) -> dict[str, tuple[str, bytes]]:
    """Kind → (filename, bytes): real files made by the app, damaged, and hostile ones."""
    cert = next(out.glob("NPKI/*/USER/*/signCert.der")).read_bytes()
    key = next(out.glob("NPKI/*/USER/*/signPri.key")).read_bytes()
    p12 = next(out.glob("*.p12")).read_bytes()
    npki_zip = io.BytesIO()
    with zipfile.ZipFile(npki_zip, "w") as zf:
        for path in out.glob("NPKI/**/*"):
            if path.is_file():
                zf.write(path, path.relative_to(out).as_posix())
    npki_zip = npki_zip.getvalue()
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("NPKI/CertCenter/USER/x/signCert.der", b"\0" * (200 * MB))
    crowd = io.BytesIO()
    with zipfile.ZipFile(crowd, "w") as zf:
        for i in range(500):
            zf.writestr(f"../{i}/signPri.key", b"x")
    pem = x509.load_der_x509_certificate(cert).public_bytes(serialization.Encoding.PEM)
    found = {"random-bytes": ("x.der", os.urandom(4096)), "empty-file": ("empty", b""),
             "huge-1MB-file": ("big.der", os.urandom(MB)),
             "zip-bomb": ("npki.zip", bomb.getvalue()), "zip-500-entries": ("many.zip", crowd.getvalue()),
             "pem-9000-begin": ("cert.pem", b"-----BEGIN CERTIFICATE-----\n" * 9000),
             "pem-many-blocks": ("chain.pem", pem * 150),
             "invalid-utf8-name": ("\udcff.der", cert)}
    for name, content in (("signCert.der", cert), ("signPri.key", key), ("cert.p12", p12),
                          ("npki.zip", npki_zip)):
        found[f"real-{name}"] = (name, content)
        for cut in (1, len(content) // 2, len(content) - 1):
            found[f"truncated-{name}-{cut}"] = (name, content[:cut])
    return found


# -- signing in, and the guessing runs ----------------------------------------------------

class Victim:
    """P0000001 through the real verification flow, from a given client address."""

    def __init__(self, client: Client, totp_secret: str, address: str):
        self.client, self.totp, self.address = client, pyotp.TOTP(totp_secret), address
        self.jar: dict = {"lang": "en"}

    def prepare(self, path: str) -> None:
        """The page's form, for its CSRF token (and a session cookie)."""
        _, html, got = self.client.send(path, "prepare", "GET", path,
                                        headers={"X-Forwarded-For": self.address}, cookies=self.jar)
        cookies_from(got, self.jar)
        self.token = csrf_token(html)

    def post(self, path: str, fields: dict, kind: str = "sign-in"):
        headers = {"X-Forwarded-For": self.address,
                   "Content-Type": "application/x-www-form-urlencoded"}
        body = form_body([("csrf_token", self.token), *fields.items()])
        status, html, got = self.client.send(path, kind, "POST", path, body, headers, self.jar)
        cookies_from(got, self.jar)
        return status, html, got

    def request(self, path: str, fields: dict, kind: str = "sign-in"):
        self.prepare(path)
        return self.post(path, fields, kind)

    def identity(self, pin=PIN, kind="sign-in"):
        return self.request("/verify/", {**PERSON, "pin": pin}, kind)

    def sign_in(self) -> dict:
        """Identity, TOTP, code: returns the session cookies of a verified customer."""
        status, _, got = self.identity()
        if not got.get("location", "").endswith("/verify/method"):
            raise RuntimeError(f"identity step answered {status}")
        self.request("/verify/method", {"method": "totp"})
        self.prepare("/verify/code")
        for _ in range(3):          # a code used before (by another sign-in) waits for the next
            status, _, _ = self.post("/verify/code", {"code": self.totp.now()})
            if status == 303:
                return dict(self.jar)
            time.sleep(30 - time.time() % 30 + 0.5)
        raise RuntimeError(f"code step answered {status}")


def database(instance: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{instance / 'certcenter.db'}?mode=ro", uri=True)


def snapshot(instance: Path) -> tuple[int, int]:
    """The newest audit event and notification: a run's own rows come after them."""
    with database(instance) as db:
        return (db.execute("SELECT coalesce(max(id), 0) FROM auditevent").fetchone()[0],
                db.execute("SELECT coalesce(max(id), 0) FROM notification").fetchone()[0])


def victim_state(instance: Path, since: tuple[int, int]) -> dict:
    since_audit, since_notification = since
    with database(instance) as db:
        failed = Counter(re.search(r'"what": "(\w+)"', details).group(1) for (details,) in db.execute(
            "SELECT details FROM auditevent WHERE id > ? AND action = 'verify.failed' "
            "AND target = 'P0000001'", (since_audit,)))
        locks = db.execute("SELECT count(*) FROM auditevent WHERE id > ? AND action = "
                           "'customer.locked' AND target = 'P0000001'", (since_audit,)).fetchone()[0]
        lockout_sms = db.execute(
            "SELECT count(*) FROM notification n JOIN customer c ON n.customer_id = c.id "
            "WHERE c.code = 'P0000001' AND n.purpose = 'lockout' AND n.id > ?",
            (since_notification,)).fetchone()[0]
        locked_until = db.execute("SELECT locked_until FROM customer WHERE code = 'P0000001'"
                                  ).fetchone()[0]
        code_tries = db.execute(
            "SELECT o.tries FROM onetimecode o JOIN customer c ON o.customer_id = c.id "
            "WHERE c.code = 'P0000001' ORDER BY o.id DESC LIMIT 1").fetchone()
    return {"failed": failed, "locks": locks, "lockout_sms": lockout_sms,
            "locked_until": locked_until, "sms_code_tries": code_tries[0] if code_tries else None}


def guessing_runs(client: Client, instance: Path, totp_secret: str) -> list[tuple[str, int, dict]]:
    """(run, attempts sent, victim state after) for each run; the victim is unlocked before
    each, so each starts on fresh counters."""
    results = []

    def run(name, attempts, action):
        flask(instance, "customers", "unlock", "P0000001")
        since = snapshot(instance)
        action()
        results.append((name, attempts, victim_state(instance, since)))

    def parallel_pins():
        victims = [Victim(client, totp_secret, "10.1.0.1") for _ in range(40)]
        for victim in victims:
            victim.prepare("/verify/")
        wrong = [f"{n:04d}" for n in random.sample(range(10000), 41) if f"{n:04d}" != PIN][:40]
        with ThreadPoolExecutor(40) as pool:
            list(pool.map(lambda v, pin: v.post("/verify/", {**PERSON, "pin": pin}, "guess-pin"),
                          victims, wrong))

    def parallel_codes(method):
        def go():
            victim = Victim(client, totp_secret, f"10.2.0.{1 if method == 'totp' else 2}")
            victim.identity()
            victim.request("/verify/method", {"method": method})
            victim.prepare("/verify/code")
            right = {victim.totp.at(time.time() + s) for s in (-30, 0, 30)}
            wrong = [f"{n:06d}" for n in random.sample(range(1_000_000), 43)
                     if f"{n:06d}" not in right][:40]
            # Each with its own copy of the session cookie: one pending session, 40 requests.
            with ThreadPoolExecutor(40) as pool:
                list(pool.map(lambda code: client.send(
                    "/verify/code", f"guess-{method}", "POST", "/verify/code",
                    form_body([("csrf_token", victim.token), ("code", code)]),
                    {"Content-Type": "application/x-www-form-urlencoded",
                     "X-Forwarded-For": victim.address}, dict(victim.jar)), wrong))
        return go

    def spread_identity():
        def one(n):
            victim = Victim(client, totp_secret, f"10.3.{n % 50}.{n % 50 + 1}")
            victim.identity(f"{(n * 7919) % 10000:04d}".replace(PIN, "0000"), "guess-identity")
        with ThreadPoolExecutor(20) as pool:
            list(pool.map(one, range(1000)))

    run("40 parallel wrong PINs, one address", 40, parallel_pins)
    run("40 parallel wrong TOTP codes, one session", 40, parallel_codes("totp"))
    run("40 parallel wrong SMS codes, one session", 40, parallel_codes("sms"))
    run("1,000 identity guesses (PINs) from 50 addresses", 1000, spread_identity)
    flask(instance, "customers", "unlock", "P0000001")
    return results


# -- the flood -----------------------------------------------------------------------------

def fill(rule: str, value: str) -> str:
    """The rule's URL with `value` in each variable part (percent-escapes kept as sent)."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: "revoke" if m.group(1) == "action"
                  else quote(value, safe="%/."), rule)


def flood_requests(rule_list, text_fields, file_fields, files, serial_hex, ocsp_good, ocsp_unknown):
    """(route, kind, method, path, body, headers, who) for every hostile request; who is the
    session it is sent in: "anonymous", "signed in", or "identity passed" (the code step's)."""
    out = []
    junk_query = "?next=%0d%0a&x=%ff&x=1&" + urlencode({"q": "١٢٣"})
    for rule, methods in rule_list:
        plain = fill(rule, serial_hex if "serial" in rule else "x")
        sessions = ["anonymous", "signed in"] + (["identity passed"] if rule.startswith("/verify/")
                                                 else [])
        for who in sessions:
            if "GET" in methods:
                for value in BAD_PATH + [serial_hex]:
                    out.append((rule, f"path:{value[:20]}", "GET", fill(rule, value), None, {}, who))
                out.append((rule, "junk-query", "GET", plain + junk_query, None, {}, who))
            if "POST" not in methods or rule.startswith(("/ocsp", "/verify/signout")):
                continue
            for name in text_fields:
                bad = {**BAD_TEXT, **{f"{script}-digits-as-plausible": text_fields[name].translate(table)
                                      for script, table in OTHER_DIGITS.items()}}
                for kind, value in bad.items():
                    out.append((rule, f"{name}={kind}", "POST", plain,
                                {**text_fields, name: value}, {}, who))
                out.append((rule, f"{name}=invalid-utf8", "POST", plain,
                            {**text_fields, name: INVALID_UTF8}, {}, who))
                out.append((rule, f"{name}=as-file", "POST", plain,
                            ("multipart", [(k, v, "f.txt" if k == name else None)
                                           for k, v in text_fields.items()]), {}, who))
                out.append((rule, f"{name}=repeated", "POST", plain,
                            [(k, v) for k, v in text_fields.items()] + [(name, "1")] * 50, {}, who))
            for name in file_fields:
                out.append((rule, f"{name}=as-text", "POST", plain,
                            ("multipart", [(k, v, None) for k, v in text_fields.items()]
                             + [(name, "signCert.der", None)]), {}, who))
                for kind, (filename, content) in files.items():
                    if kind == "p12-md5-2^31":
                        continue                          # sent once each, at the end
                    out.append((rule, f"{name}:{kind}", "POST", plain,
                                ("multipart", [(k, v, None) for k, v in text_fields.items()]
                                 + [(name, content, filename)] * (2 if "truncated" in kind else 1)),
                                {}, who))
            for kind, ctype, body in (("json", "application/json", b'{"pin": 1, "code": [1]}'),
                                      ("json-string", "application/json", b'"abc"'),
                                      ("json-broken", "application/json", b"{"),
                                      ("text/plain", "text/plain", b"pin=1234"),
                                      ("xml", "application/xml", b"<a/>"),
                                      ("multipart-no-boundary", "multipart/form-data", b"--x\r\n"),
                                      ("multipart-broken", "multipart/form-data; boundary=x",
                                       b"--x\r\nContent-Disposition: form-data; name=\"pin\"\r\n\r\n1"),
                                      ("urlencoded-invalid-utf8", "application/x-www-form-urlencoded",
                                       b"pin=\xff\xfe&code=\xc3\x28"),
                                      ("no-csrf", "application/x-www-form-urlencoded", b"pin=1234")):
                out.append((rule, f"content-type:{kind}", "POST", plain, body,
                            {"Content-Type": ctype}, who))
    # OCSP, CRL, language
    garbage = [os.urandom(n) for n in (1, 10, 300)]
    for der in [ocsp_good, ocsp_unknown, b"", *garbage, b"0" * MB, ocsp_good[:-3]]:
        out.append(("/ocsp", f"ocsp-post-{len(der)}B", "POST", "/ocsp", der,
                    {"Content-Type": "application/ocsp-request"}, "anonymous"))
        out.append(("/ocsp", f"ocsp-post-{len(der)}B-wrong-type", "POST", "/ocsp", der,
                    {"Content-Type": "text/plain"}, "anonymous"))
        if len(der) < 20_000:
            encoded = quote(base64.b64encode(der).decode(), safe="")
            out.append(("/ocsp/<path:encoded>", f"ocsp-get-{len(der)}B", "GET", f"/ocsp/{encoded}",
                        None, {}, "anonymous"))
    for path in ("/ocsp/%%%", "/ocsp/" + "A" * 8000, "/ocsp/..%2f..%2f", "/ocsp/%ff%00",
                 "/pki/issuing.crl?x=%ff", "/pki/issuing.crl/../root.crt", "/pki/root.crt%00"):
        out.append(("/ocsp|/pki", f"path:{path[:24]}", "GET", path, None, {}, "anonymous"))
    for target in ("/\r\nSet-Cookie:x=1", "%0d%0aLocation:%20http://evil", "https://evil.example/",
                   "//evil.example", "/\\evil.example", "/%09/evil.example", "javascript:alert(1)",
                   "/" + "a" * 6000, "/my/?a=%ff", "\u202e/my/", "/١٢٣"):
        query = target if "%" in target else quote(target, safe="/:?=")
        out.append(("/lang/<code>", f"next={target[:20]!r}", "GET", f"/lang/en?next={query}",
                    None, {}, "anonymous"))
        out.append(("/lang/<code>", "raw-crlf", "GET", "/lang/en?next=/%0d%0a%0d%0a" + query,
                    None, {}, "anonymous"))
    return out


def signed_in(client: Client, instance: Path, totp_secret: str) -> tuple[dict, str]:
    """A fresh verified session of P0000001 and its CSRF token. The flood's wrong codes lock
    the customer, so an operator unlocks them first (again, if the flood's parallel wrong codes
    lock them before the sign-in is through)."""
    for _ in range(5):
        flask(instance, "customers", "unlock", "P0000001")
        try:
            jar = Victim(client, totp_secret, "10.4.0.1").sign_in()
            break
        except RuntimeError as refused:
            problem = refused
    else:
        raise SystemExit(f"could not sign in as P0000001: {problem}")
    status, html, got = client.send("/my/", "sign-in", "GET", "/my/", cookies=jar)
    if status != 200:
        raise SystemExit(f"signed in, but /my/ answered {status}")
    return cookies_from(got, jar), csrf_token(html)


def identity_passed(client: Client, instance: Path, totp_secret: str) -> tuple[dict, str]:
    """A session of P0000001 at the code step (TOTP chosen), and its CSRF token."""
    flask(instance, "customers", "unlock", "P0000001")
    victim = Victim(client, totp_secret, "10.5.0.1")
    victim.identity()
    victim.request("/verify/method", {"method": "totp"})
    victim.prepare("/verify/code")
    return dict(victim.jar), victim.token


def run_flood(client, requests, anonymous, make_session, workers):
    """Send every request; `anonymous` is (cookies, CSRF token), `make_session(who)` makes
    the others."""
    sessions = {"anonymous": (anonymous, 0.0)}
    lock = threading.Lock()

    def session(who):
        # A session lasts 10 minutes idle, and the flood keeps one cookie per kind: a new
        # one before it ages out.
        with lock:
            if who not in sessions or time.monotonic() - sessions[who][1] > 420:
                sessions[who] = (make_session(who), time.monotonic())
            return sessions[who][0]

    def one(item):
        route, kind, method, path, body, headers, who = item
        jar, token = session(who)
        headers = {"X-Forwarded-For": f"10.9.{random.randrange(256)}.{random.randrange(1, 255)}",
                   **headers}
        if isinstance(body, dict):
            body = list(body.items())
        if isinstance(body, tuple):                       # multipart
            data, ctype = multipart([("csrf_token", token, None), *body[1]])
            body, headers["Content-Type"] = data, ctype
        elif isinstance(body, list):
            body = form_body([("csrf_token", token), *body])
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        client.send(route, kind if who == "anonymous" else f"{kind} ({who})", method, path, body,
                    headers, jar)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, requests))


def report(tally: Tally, guesses, elapsed: float) -> bool:
    outcomes = tally.outcomes
    classes = Counter(f"{o.status // 100}xx" if o.status else "timeout/error" for o in outcomes)
    times = sorted(o.seconds for o in outcomes)
    print()
    print(f"total requests: {len(outcomes)} in {elapsed:.0f} s")
    print("by status class: " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items())))
    # Most flow pages send a request without the earlier steps' answers back to the start
    # (3xx), and every signed-in page sends an anonymous one to identity verification.
    signed = [o for o in outcomes if o.kind.endswith("(signed in)")]
    print(f"signed in: {len(signed)} requests, of which 3xx "
          f"{sum(1 for o in signed if o.status and o.status // 100 == 3)}")
    print(f"latency: p50 {times[len(times) // 2] * 1000:.0f} ms, "
          f"p99 {times[int(len(times) * 0.99)] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms")
    errors = Counter((o.route, o.kind, o.status) for o in outcomes if o.status and o.status >= 500)
    print(f"5xx: {sum(errors.values())}")
    for (route, kind, status), n in sorted(errors.items()):
        print(f"  {status} {route}  [{kind}] x{n}")
    failed = Counter((o.route, o.kind, o.error) for o in outcomes if o.status is None)
    print(f"timeouts / connection failures: {sum(failed.values())}")
    for (route, kind, error), n in sorted(failed.items()):
        print(f"  {error} {route}  [{kind}] x{n}")
    print()
    print("guessing runs (P0000001; limits: 5 per target per 30 min, 20 per client per hour):")
    for name, attempts, state in guesses:
        evaluated = sum(state["failed"].values())
        what = ", ".join(f"{k} {v}" for k, v in sorted(state["failed"].items())) or "none"
        tries = (f", SMS code tries {state['sms_code_tries']}" if "SMS" in name else "")
        print(f"  {name}: {attempts} sent, {evaluated} evaluated ({what}){tries}; "
              f"locked: {'yes' if state['locks'] else 'no'}, lockout SMS: {state['lockout_sms']}")
    return not errors and not failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if not (BIN / "gunicorn").exists():
        raise SystemExit(f"{BIN / 'gunicorn'} missing: .venv/bin/pip install -r requirements.txt")

    tmp = Path(tempfile.mkdtemp(prefix="certcenter-bench-hostile-"))
    gunicorn = None
    try:
        print(f"Setting up an instance in {tmp} …", flush=True)
        inst = make_instance(tmp / "instance")
        seeded = flask(inst.folder, "demo", "seed")
        totp_secret = re.search(r"TOTP secret (\w+)", seeded).group(1)
        cert = issue(inst, tmp / "issued")
        files = uploads(tmp / "issued")
        files["p12-md5-2^31"] = ("cert.p12", damaged_p12(files["real-cert.p12"][1]))
        text_fields, file_fields = form_fields()
        rule_list = routes(inst.folder)
        ocsp_good = (ocsp.OCSPRequestBuilder().add_certificate(cert, inst.issuing_cert, hashes.SHA1())
                     .build().public_bytes(serialization.Encoding.DER))
        issuer = inst.issuing_cert
        ocsp_unknown = (ocsp.OCSPRequestBuilder().add_certificate_by_hash(
            hashlib.sha1(issuer.subject.public_bytes()).digest(),
            x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest,
            random.getrandbits(150), hashes.SHA1()).build().public_bytes(serialization.Encoding.DER))

        port = free_port()
        env = {**instance_env(inst.folder), "CERTCENTER_DEMO": "1",
               # ProxyFix's count of trusted proxies: X-Forwarded-For's last address is the client
               "CERTCENTER_TRUSTED_PROXIES": "1"}
        gunicorn = start([str(BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}",
                          "--log-level", "warning", "app:create_app()"],
                         tmp / "gunicorn.log", env=env, cwd=ROOT)
        tally = Tally()
        client = Client(port, tally)
        deadline = time.monotonic() + 30
        while client.send("/", "warm-up", "GET", "/")[0] != 200:
            if time.monotonic() > deadline or gunicorn.poll() is not None:
                raise SystemExit("gunicorn did not start; see " + str(tmp / "gunicorn.log"))
            time.sleep(0.3)
        tally.outcomes.clear()                    # connection refusals while starting
        started = time.monotonic()

        print(f"gunicorn -w 2 on 127.0.0.1:{port}; guessing runs …", flush=True)
        guesses = guessing_runs(client, inst.folder, totp_secret)

        anon_jar: dict = {"lang": "en"}
        status, html, got = client.send("/verify/", "csrf", "GET", "/verify/", cookies=anon_jar)
        cookies_from(got, anon_jar)
        anon_token = csrf_token(html)
        requests = flood_requests(rule_list, text_fields, file_fields, files,
                                  format(cert.serial_number, "X"), ocsp_good, ocsp_unknown)
        random.shuffle(requests)
        print(f"flood: {len(requests)} requests over {len(rule_list)} routes, "
              f"{args.workers} client threads …", flush=True)
        def make_session(who):
            made = signed_in if who == "signed in" else identity_passed
            return made(client, inst.folder, totp_secret)

        run_flood(client, requests, (anon_jar, anon_token), make_session, args.workers)

        # Last, in parallel: the .p12 whose MAC check never ends, once per upload page, and
        # signing out.
        jar, token = signed_in(client, inst.folder, totp_secret)
        slow = files["p12-md5-2^31"]
        last = [(rule, "files:p12-md5-2^31 (signed in)", "POST", fill(rule, "x"),
                 ("multipart", [("password", "Wrong!pass42x", None), ("old_password", "x", None),
                                ("password_again", "Wrong!pass42x", None),
                                ("rrn", PERSON["rrn"], None), ("files", slow[1], slow[0])]),
                 {}, "anonymous")
                for rule, _methods in rule_list if rule in (
                    "/files/password", "/my/check/files", "/register/files",
                    "/renew/certificate/files", "/transfer/send")]
        last.append(("/verify/signout", "signout (signed in)", "POST", "/verify/signout", [], {},
                     "anonymous"))
        run_flood(client, last, (jar, token), make_session, len(last))
        ok = report(tally, guesses, time.monotonic() - started)
    finally:
        stop(gunicorn)
        clean_up(tmp, args.keep)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
