"""The operator CLI (`flask --app app …`), run through app.test_cli_runner(): what an
operator types and reads, the files it writes, and openssl's opinion of them."""
import re
import shutil
import subprocess
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from models import Certificate, Customer, Download
from pki import npki
from services import ca_store, issuance
from tests.conftest import move_clock, remove_ca
from tests.test_web_support import PASSWORD, cli_refused

HEX40 = re.compile(r"^[0-9a-f]{40}$")
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")


def message(app, message_id, **params) -> str:
    """The sentence the CLI prints for an error id, in the language it speaks."""
    from views.messages import message_for
    with app.test_request_context():
        return message_for(SimpleNamespace(code=message_id, params=params))


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args):
        return runner.invoke(args=[str(a) for a in args])
    return run


# -- ca, db, jobs -------------------------------------------------------------------------

def test_ca_init_creates_once_then_changes_nothing(app, cli, tmp_path):
    remove_ca()
    refused = cli("ca", "init")
    assert refused.exit_code == 1 and "--root-out" in refused.output
    (tmp_path / "passphrase").write_text("a long root passphrase\n")
    first = cli("ca", "init", "--root-out", str(tmp_path / "root-ca"),
                "--root-passphrase-file", str(tmp_path / "passphrase"))
    assert first.exit_code == 0, first.output
    assert "Created the CA." in first.output
    root_pem = ca_store.read("root.crt")

    second = cli("ca", "init")
    assert second.exit_code == 0, second.output
    assert "nothing was changed" in second.output
    fingerprints = dict(re.findall(r"^\s+(\w+)\s+SHA-256 ([0-9A-F:]{95})$", second.output, re.M))
    assert set(fingerprints) == {"root", "issuing", "ocsp"}
    root = x509.load_pem_x509_certificate(root_pem)
    assert fingerprints["root"] == root.fingerprint(hashes.SHA256()).hex(":").upper()
    assert ca_store.read("root.crt") == root_pem
    assert re.findall(r"SHA-256 \S+", first.output) == re.findall(r"SHA-256 \S+", second.output)
    assert oct((tmp_path / "root-ca" / "root.key").stat().st_mode & 0o777) == "0o600"
    assert not list(app.config["INSTANCE"].rglob("root.key"))


def test_db_upgrade_says_up_to_date(cli):
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_jobs_run_purges_expired_downloads(cli, demo):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
           .sign(key, hashes.SHA256()))
    issuance.issue_certificate(demo["person"], "personal-banking", idn="900101-1234567",
                               actor="test", csr_der=csr.public_bytes(serialization.Encoding.DER))
    nothing = cli("jobs", "run")
    assert nothing.exit_code == 0 and "Purged" not in nothing.output
    move_clock(minutes=11)
    purged = cli("jobs", "run")
    assert purged.exit_code == 0, purged.output
    assert "Purged 2 expired downloads." in purged.output
    assert all(row.content is None for row in Download.select())


# -- customers ----------------------------------------------------------------------------

GOOD = ["--name", "김철수", "--rrn", "850315-1234567", "--phone", "010-1234-5678",
        "--account", "110-222-333444", "--pin", "5678"]


def _with(args, option, value):
    args = list(args)
    args[args.index(option) + 1] = value
    return args


def test_customers_add(cli, demo):
    result = cli("customers", "add", *GOOD, "--operator", "kim")
    assert result.exit_code == 0, result.output
    assert re.search(r"Added P0000002 김철수\.", result.output)
    added = Customer.get(Customer.code == "P0000002")
    assert added.rrn_masked == "850315-1******" and added.phone == "01012345678"

    business = cli("customers", "add", "--kind", "business", "--name", "(주)바다상사",
                   "--representative", "이바다", "--rrn", "750505-1234567",
                   "--business-number", "234-56-78901", "--phone", "010-2222-3333",
                   "--account", "330-111-222333", "--pin", "1111")
    assert business.exit_code == 0, business.output
    assert "Added B0000002" in business.output


@pytest.mark.parametrize("option, value, code", [
    ("--rrn", "12345", "rrn_format"),
    ("--rrn", "901301-1234567", "rrn_format"),          # no 13th month
    ("--phone", "02-123-4567", "phone_format"),
    ("--account", "12", "account_format"),
    ("--pin", "12a4", "pin_format"),
    ("--name", "a,b=c", "name_format"),
    ("--rrn", "900101-1234567", "customer_duplicate"),  # the demo person's
], ids=["rrn-short", "rrn-date", "phone", "account", "pin", "name", "duplicate"])
def test_customers_add_refuses_bad_input_clearly(app, cli, demo, option, value, code):
    before = Customer.select().count()
    result = cli("customers", "add", *_with(GOOD, option, value))
    output = cli_refused(app, result)
    assert message(app, code) in output
    assert Customer.select().count() == before


def test_customers_add_business_needs_its_numbers(app, cli, demo):
    result = cli("customers", "add", "--kind", "business", *GOOD, "--representative", "김철수")
    assert message(app, "business_number_format") in cli_refused(app, result)
    unknown_kind = cli("customers", "add", "--kind", "martian", *GOOD)
    assert unknown_kind.exit_code == 2 and "Traceback" not in unknown_kind.output
    assert "martian" in unknown_kind.output


def test_customers_import_reports_bad_rows_by_line_and_imports_the_good(app, cli, demo, tmp_path):
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text(
        "kind,name,rrn,phone,account,pin,email\n"
        "personal,박하나,880808-2345678,010-3333-4444,110-333-444555,2468,\n"      # line 2
        "personal,최둘,12345,010-5555-6666,110-555-666777,1357,\n"                  # line 3
        "personal,정셋,770707-1234567,010-7777-8888,110-777-888999,9753,not-an-email\n"
        "personal,박하나2,880808-2345678,010-9999-0000,110-999-000111,1122,\n"      # line 5
        "personal,오넷,660606-1234567,010-1212-3434,110-121-343456,8642,o@example.com\n",
        encoding="utf-8")
    result = cli("customers", "import", csv_file, "--operator", "kim")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = result.stderr
    assert f"line 3: rrn: {message(app, 'rrn_format')}" in errors
    assert f"line 4: email: {message(app, 'email_format')}" in errors
    assert f"line 5: -: {message(app, 'customer_duplicate')}" in errors
    assert "line 2" not in errors and "line 6" not in errors
    assert "Imported 2 customers; 3 rows refused." in result.stdout
    names = {c.name for c in Customer.select()}
    assert {"박하나", "오넷"} <= names and not {"최둘", "정셋", "박하나2"} & names


def test_customers_import_without_the_required_columns_names_them(app, cli, demo, tmp_path):
    csv_file = tmp_path / "wrong.csv"
    csv_file.write_text("name,rrn\n김철수,850315-1234567\n", encoding="utf-8")
    output = cli_refused(app, cli("customers", "import", csv_file))
    assert "kind" in output and "phone" in output and "account" in output
    assert Customer.select().count() == 2


def test_customers_list_masks_rrns(cli, demo):
    result = cli("customers", "list")
    assert result.exit_code == 0, result.output
    assert "P0000001" in result.output and "B0000001" in result.output
    assert "900101-1******" in result.output and "800202-2******" in result.output
    assert "1234567" not in result.output and "2345678" not in result.output


# -- certificates -------------------------------------------------------------------------

@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "password.txt"
    path.write_text(PASSWORD + "\n")
    return path


@needs_openssl
def test_certs_issue_writes_npki_p12_and_chain_that_openssl_accepts(app, cli, demo, tmp_path,
                                                                    password_file):
    out = tmp_path / "out"
    result = cli("certs", "issue", "--customer", "P0000001", "--type", "personal-banking",
                 "--rrn", "9001011234567", "--password-file", password_file, "--out", out,
                 "--operator", "kim")
    assert result.exit_code == 0, result.output
    cert_row = Certificate.get()
    assert f"Issued {cert_row.serial} to P0000001." in result.output
    cert = x509.load_der_x509_certificate(bytes(cert_row.der))

    user = out / "NPKI" / "CertCenter" / "USER" / npki.subject_folder_name(cert)
    assert (user / "signCert.der").read_bytes() == bytes(cert_row.der)
    key, _random = npki.read_private_key((user / "signPri.key").read_bytes(), PASSWORD)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    p12 = out / f"{cert_row.serial}.p12"
    chain = out / "chain.pem"
    assert p12.exists() and chain.exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(["NPKI", p12.name, "chain.pem"])

    cert_pem = tmp_path / "cert.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    root = tmp_path / "root.crt"
    root.write_bytes(ca_store.read("root.crt"))
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(root), "-untrusted",
                               str(chain), str(cert_pem)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip().endswith(": OK")

    opened = subprocess.run(["openssl", "pkcs12", "-in", str(p12), "-passin",
                             f"file:{password_file}", "-noout"], capture_output=True, text=True)
    assert opened.returncode == 0, opened.stderr
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("Wrong!pass42\n")
    refused = subprocess.run(["openssl", "pkcs12", "-in", str(p12), "-passin",
                              f"file:{wrong}", "-noout"], capture_output=True, text=True)
    assert refused.returncode != 0

    listed = cli("certs", "list")
    assert listed.exit_code == 0
    serials = [line.split()[0] for line in listed.output.splitlines() if line.strip()]
    assert serials == [cert_row.serial] and HEX40.match(serials[0])
    assert "valid" in listed.output and "P0000001" in listed.output
    mine = cli("certs", "list", "--customer", "p0000001")
    assert cert_row.serial in mine.output


def test_certs_issue_refuses_a_wrong_rrn_and_writes_nothing(app, cli, demo, tmp_path,
                                                            password_file):
    out = tmp_path / "out"
    result = cli("certs", "issue", "--customer", "P0000001", "--type", "personal-banking",
                 "--rrn", "8001011234567", "--password-file", password_file, "--out", out)
    assert message(app, "identity_mismatch") in cli_refused(app, result)
    assert not out.exists() and Certificate.select().count() == 0


def test_certs_issue_for_an_unknown_customer_says_so(app, cli, demo, tmp_path, password_file):
    out = tmp_path / "out"
    result = cli("certs", "issue", "--customer", "P0000009", "--type", "personal-banking",
                 "--rrn", "9001011234567", "--password-file", password_file, "--out", out)
    assert "P0000009" in cli_refused(app, result)
    assert not out.exists() and Certificate.select().count() == 0


def test_certs_list_for_an_unknown_customer_says_so(app, cli, demo):
    result = cli("certs", "list", "--customer", "P0000009")
    assert "P0000009" in cli_refused(app, result)


def test_certs_issue_refuses_a_weak_password_and_a_business_type(app, cli, demo, tmp_path):
    weak = tmp_path / "weak.txt"
    weak.write_text("short1!\n")
    out = tmp_path / "out"
    result = cli("certs", "issue", "--customer", "P0000001", "--type", "personal-banking",
                 "--rrn", "9001011234567", "--password-file", weak, "--out", out)
    assert message(app, "password_length") in cli_refused(app, result)
    business = cli("certs", "issue", "--customer", "B0000001", "--type", "business-banking",
                   "--rrn", "123-45-67890", "--password-file", weak, "--out", out)
    assert message(app, "request_needed") in cli_refused(app, business)
    both = cli("certs", "issue", "--customer", "P0000001", "--type", "personal-banking",
               "--rrn", "9001011234567", "--out", out)
    assert both.exit_code == 2 and "exactly one of" in both.output
    assert not out.exists() and Certificate.select().count() == 0
