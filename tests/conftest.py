"""Shared fixtures: a fresh instance (database, secrets) per test, one CA per session,
CSRF always on, and a client that fills in forms the way a browser does."""
import os
import re
import secrets
import shutil
import socket
import subprocess
from datetime import timedelta
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from app import create_app
from models import CaFile, Customer, Notification, db
from models.tables import ALL_TABLES
from services import ca_store, ceremony, clock
from services.notify import text_of
from tests import npki_vector

REPO = Path(__file__).resolve().parents[1]
# The NPKI vector from the pypinksign package, written to a temporary folder: VECTORS / "pypinksign".
VECTORS = npki_vector.folder()


ROOT_PASSPHRASE = b"correct horse battery staple"
CA_ROWS: dict = {}        # a CA template folder -> its ca_file rows, copied into each test's database
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
BACKENDS = ("file", "pkcs11")
# A PostgreSQL server the service, web, CLI and attempt-limit tests run on as well as on SQLite: the URL of a
# role that may create databases (.ci/run starts one on a Unix socket). Unset: SQLite only.
TEST_DATABASE = os.environ.get("CERTCENTER_TEST_DATABASE", "")
ON_BOTH_DATABASES = ("test_services", "test_web_", "test_attempt_limits",   # test modules
                     "test_several_hosts", "test_ocsp_server")


def pytest_configure(config):
    config.addinivalue_line("markers", "both_backends: run once with the CA keys in files and "
                                       "once in a PKCS#11 token (SoftHSM2)")
    config.addinivalue_line("markers", "backends(*names): run with the CA keys in these "
                                       "backends only")


def pytest_report_header(config):
    if TEST_DATABASE:
        return f"database: SQLite, and PostgreSQL ({TEST_DATABASE}) for the service, web and CLI tests"
    return ("database: SQLite only (CERTCENTER_TEST_DATABASE=postgresql://… runs the service, "
            "web and CLI tests on PostgreSQL too)")


def pytest_generate_tests(metafunc):
    if ("database" in metafunc.fixturenames and TEST_DATABASE
            and metafunc.module.__name__.split(".")[-1].startswith(ON_BOTH_DATABASES)):
        metafunc.parametrize("database", ["sqlite", "postgresql"], indirect=True)
    if "signer_backend" not in metafunc.fixturenames:
        return
    only = metafunc.definition.get_closest_marker("backends")
    if only:
        metafunc.parametrize("signer_backend", only.args, indirect=True)
    elif metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("signer_backend", BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def postgresql_database():
    """One PostgreSQL database for this run (CREATE DATABASE takes half a second; emptying
    the tables between tests takes a few milliseconds); dropped at the end."""
    import psycopg
    name = f"cc_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(TEST_DATABASE, autocommit=True) as server:
        server.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(TEST_DATABASE)._replace(path="/" + name))
    with psycopg.connect(TEST_DATABASE, autocommit=True) as server:
        server.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _empty_postgresql(url: str) -> None:
    """Leave the database as a new one upgraded to today's schema: every table emptied, or,
    after a test that changed the schema itself (a migration test), no table at all."""
    import psycopg

    from models.migrations import MIGRATIONS
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        version = (conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
                   if "schema_version" in tables else None)
        expected = {model._meta.table_name for model in ALL_TABLES} | {"schema_version"}
        if version == MIGRATIONS[-1][0] and set(tables) == expected:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables if t != "schema_version")
                         + " RESTART IDENTITY CASCADE")
        else:
            conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


@pytest.fixture
def database(request):
    """The test app's database: {} for SQLite in its instance folder, or the DATABASE_URL of
    the run's PostgreSQL database, emptied after the test."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield {}
        return
    url = request.getfixturevalue("postgresql_database")
    yield {"DATABASE_URL": url}
    if not db.is_closed():
        db.close()
    _empty_postgresql(url)


@pytest.fixture
def signer_backend(request):
    """Where the CA keys are: "file" unless the test is marked both_backends."""
    return getattr(request, "param", "file")


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory) -> dict:
    """A SoftHSM2 token initialised for this run in a temporary folder; the settings that
    point CertCenter at it."""
    if not Path(SOFTHSM_MODULE).exists():
        pytest.fail("SoftHSM2 is not installed (Debian package softhsm2; .ci/run installs it)")
    folder = tmp_path_factory.mktemp("softhsm")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    # Read by the library when it is first loaded, which is after this.
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "certcenter-test",
                    "--so-pin", "5678", "--pin", "1234"], check=True, capture_output=True)
    return {"CERTCENTER_PKCS11_MODULE": SOFTHSM_MODULE,
            "CERTCENTER_PKCS11_TOKEN": "certcenter-test", "CERTCENTER_PKCS11_PIN": "1234"}


@pytest.fixture(scope="session")
def ca_templates(tmp_path_factory):
    """template(backend) -> an instance folder with a CA, made once per backend; each test
    copies it. The root key goes to `root-ca/` beside it, under ROOT_PASSPHRASE."""
    made = {}

    def template(backend: str, hsm: dict | None = None) -> Path:
        if backend not in made:
            folder = tmp_path_factory.mktemp(f"ca-template-{backend}")
            app = create_app({"CERTCENTER_INSTANCE": str(folder), "TESTING": True,
                              **(hsm or {})})
            with app.app_context(), db.connection_context():
                ceremony.init_ca(folder.parent / f"{folder.name}-root", ROOT_PASSPHRASE)
                CA_ROWS[folder] = list(CaFile.select().dicts())
            made[backend] = folder
        return made[backend]
    return template


def root_key_of(template: Path) -> Path:
    return template.parent / f"{template.name}-root" / "root.key"


@pytest.fixture
def backend_settings(request, signer_backend) -> dict:
    """The settings that put the CA keys where signer_backend says."""
    return request.getfixturevalue("softhsm") if signer_backend == "pkcs11" else {}


@pytest.fixture
def ca_template(ca_templates, signer_backend, backend_settings):
    """An instance folder with a CA of the test's backend, made once per run."""
    return ca_templates(signer_backend, backend_settings)


@pytest.fixture
def root_key(ca_template) -> Path:
    """The offline root key of the test's CA (its passphrase is ROOT_PASSPHRASE)."""
    return root_key_of(ca_template)


def fresh_app(tmp_path, ca_template, **config):
    """An app on a new instance folder holding a copy of the session's CA."""
    instance = tmp_path / "instance"
    instance.mkdir()
    for name in ("ca-passphrase", "master.key", "secret_key"):
        shutil.copy2(ca_template / name, instance / name)
    clock.reset()
    ca_store.forget_ca()
    app = create_app({"CERTCENTER_INSTANCE": str(instance), "TESTING": True,
                      "CERTCENTER_DEMO": "1", **config})
    with db.connection_context():
        CaFile.insert_many(CA_ROWS[ca_template]).execute()
    ca_store.forget_ca()
    return app


def remove_ca() -> None:
    """Leave the test's database without a CA, as before `ca init`."""
    CaFile.delete().execute()
    ca_store.forget_ca()


@pytest.fixture
def app(tmp_path, ca_template, backend_settings, database):
    application = fresh_app(tmp_path, ca_template, **backend_settings, **database)
    assert application.config.get("WTF_CSRF_ENABLED", True), "tests run with CSRF on"
    # No app context stays pushed: each request gets its own, as in production (Flask-Babel
    # caches the language per context). Tests reach the database directly.
    db.connect(reuse_if_open=True)
    yield application
    ca_store.write_signature_counts()     # into this test's database, not the next one's
    if not db.is_closed():
        db.close()
    clock.reset()
    ca_store.forget_ca()


@pytest.fixture
def console(tmp_path, ca_template, database):
    """An app with the operators' console switched on."""
    application = fresh_app(tmp_path, ca_template, CERTCENTER_OPS="1", **database)
    db.connect(reuse_if_open=True)
    yield application
    if not db.is_closed():
        db.close()
    clock.reset()
    ca_store.forget_ca()


@pytest.fixture
def demo(app):
    """The demo customers, as `flask demo seed` makes them."""
    result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    secret = re.search(r"TOTP secret (\w+)", result.output).group(1)
    return {"person": Customer.get(Customer.code == "P0000001"),
            "business": Customer.get(Customer.code == "B0000001"), "totp_secret": secret}


class Browserish:
    """A test client that reads each form's CSRF token from the page before posting."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def get(self, url, **kwargs):
        response = self.client.get(url, **kwargs)
        self._remember_token(response)
        return response

    def _remember_token(self, response) -> None:
        if response.mimetype != "text/html":
            return                                   # a downloaded file has no form
        found = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
        if found:
            self.token = found.group(1)

    def post(self, url, data=None, follow=True, **kwargs):
        if self.token is None:
            self.get(url)
        data = {"csrf_token": self.token, **(data or {})}
        response = self.client.post(url, data=data, follow_redirects=follow, **kwargs)
        self._remember_token(response)
        return response


@pytest.fixture
def web(app):
    return Browserish(app.test_client())


def text(response) -> str:
    """The visible text of a page, whitespace folded, for assertions about what people read."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def last_sms(customer) -> str:
    note = (Notification.select().where((Notification.customer == customer)
                                        & (Notification.channel == "sms"))
            .order_by(Notification.id.desc()).first())
    return text_of(note) if note else ""


def sms_code(customer) -> str:
    return re.search(r"\b(\d{6})\b", last_sms(customer)).group(1)


PERSON = {"name": "홍길동", "rrn": "900101-1234567", "account": "110-123-456789", "pin": "1234"}
BUSINESS = {"name": "김한빛", "rrn": "800202-2345678", "business_number": "123-45-67890",
            "account": "220-987-654321", "pin": "4321"}


def verify_by_sms(web, customer, details=PERSON, start="/verify/"):
    """Pass identity verification with the SMS code; returns the page it lands on."""
    web.get(start)
    response = web.post("/verify/", details)
    if "/verify/method" in response.request.path:
        response = web.post("/verify/method", {"method": "sms"})
    return web.post("/verify/code", {"code": sms_code(customer)})


def free_port() -> int:
    """A port nothing listens on now, for a server a test starts in another process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def move_clock(**delta):
    clock.advance(timedelta(**delta))


from tests.browser import chromium, live  # noqa: E402,F401  (shared fixtures, defined once)
