"""The business flow: request through the pages, an operator decides with the CLI, the
customer comes back and downloads."""
import io
import re
import zipfile

from cryptography.hazmat.primitives.serialization import pkcs12

from models import Certificate, CertificateRequest
from services import issuance
from services.clock import now
from tests.conftest import BUSINESS, last_sms, move_clock, sms_code, text
from tests.test_web_support import (
    PASSWORD,
    cli_refused,
    download_links,
    english,
    h1,
    key_and_password,
    start_verification,
    title,
)

CHECKED = ["--document", "business-registration", "--document", "representative-id"]


def _verify_business(web, customer, start="/issue/terms"):
    english(web)
    web.get(start)
    code_page = start_verification(web, BUSINESS)     # no authenticator: straight to the code
    assert h1(code_page) == "Enter the code we sent you"
    return web.post("/verify/code", {"code": sms_code(customer)})


def _request_business_banking(web, customer):
    """Through the pages: verify -> terms -> type -> check your request -> waiting."""
    terms = _verify_business(web, customer)
    assert terms.request.path == "/issue/terms"
    kind = web.post("/issue/terms", {"agree": "y"})
    html = kind.get_data(as_text=True)
    assert 'value="business-banking"' in html and 'value="personal-banking"' not in html
    assert "needs approval by bank staff" in text(kind)
    request_page = web.post("/issue/type", {"cert_type": "business-banking"})
    assert request_page.request.path == "/issue/request"
    assert h1(request_page) == "Check your request"
    assert "4,400 won" in text(request_page)
    waiting = web.post("/issue/request", {})
    assert waiting.request.path == "/issue/waiting"
    assert h1(waiting) == "Your request is waiting for approval"
    request = CertificateRequest.get()
    assert re.search(rf"Request number: {request.id}\b", text(waiting))
    return request


def _requested_by_service(customer):
    """The request as the page makes it (test_business_requests_through_the_pages tests the
    page itself), for tests about what comes after."""
    return issuance.request_certificate(customer, "business-banking")


def test_business_requests_through_the_pages(web, demo, app):
    business = demo["business"]
    request = _request_business_banking(web, business)
    assert request.status == "requested" and Certificate.select().count() == 0

    # Asking again while it waits: the waiting page, not a second request.
    web.get("/issue/terms")
    web.post("/issue/terms", {"agree": "y"})
    again = web.post("/issue/type", {"cert_type": "business-banking"})
    assert again.request.path == "/issue/waiting"
    assert CertificateRequest.select().count() == 1
    assert web.get("/issue/key").status_code == 303, "no key step while it waits"
    assert "waiting for approval" in text(web.get("/my/"))

    cli = app.test_cli_runner()
    listed = cli.invoke(args=["requests", "list"])
    assert f"{request.id}" in listed.output and "B0000001" in listed.output
    rejected = cli.invoke(args=["requests", "reject", str(request.id), "--operator", "kim",
                                "--reason", "Documents missing"])
    assert rejected.exit_code == 0
    # Rejected: the customer may ask again, through the same pages.
    web.get("/issue/terms")
    web.post("/issue/terms", {"agree": "y"})
    again = web.post("/issue/type", {"cert_type": "business-banking"})
    assert again.request.path == "/issue/request"


def test_business_request_approve_and_download(web, demo, app):
    business = demo["business"]
    terms = _verify_business(web, business)
    assert terms.request.path == "/issue/terms"
    request = _requested_by_service(business)

    # While it waits, choosing the type shows the waiting page, and the key step is closed.
    web.post("/issue/terms", {"agree": "y"})
    waiting = web.post("/issue/type", {"cert_type": "business-banking"})
    assert waiting.request.path == "/issue/waiting"
    assert h1(waiting) == "Your request is waiting for approval"
    assert re.search(rf"Request number: {request.id}\b", text(waiting))
    assert web.get("/issue/key").status_code == 303
    assert "waiting for approval" in text(web.get("/my/"))

    cli = app.test_cli_runner()
    listed = cli.invoke(args=["requests", "list"])
    assert listed.exit_code == 0, listed.output
    line = next(ln for ln in listed.output.splitlines() if ln.strip().startswith(str(request.id)))
    assert "B0000001" in line and "business-banking" in line and "requested" in line

    approved = cli.invoke(args=["requests", "approve", str(request.id), "--operator", "kim", *CHECKED])
    assert approved.exit_code == 0, approved.output
    assert f"Approved request {request.id}" in approved.output
    request = CertificateRequest.get_by_id(request.id)
    assert request.status == "approved" and request.decided_by == "kim"
    assert "was approved" in last_sms(business)
    assert cli.invoke(args=["requests", "list"]).output.strip() == "", "nothing left waiting"

    # The customer comes back later, on another visit.
    move_clock(hours=2)
    web.client.delete_cookie("cc_session")
    mine = _verify_business(web, business, start="/my/")
    assert mine.request.path == "/my/"
    assert "set a password and download" in text(mine)
    web.get("/issue/terms")
    web.post("/issue/terms", {"agree": "y"})
    key = web.post("/issue/type", {"cert_type": "business-banking"})
    assert key.request.path == "/issue/key"
    check = key_and_password(web)
    assert "4,400 won" in text(check)
    done = web.post("/issue/check", {})
    assert done.request.path == "/issue/done" and h1(done) == "Your certificate is ready"
    links = download_links(done)
    assert len(links) == 4

    cert = Certificate.get()
    assert cert.cert_type == "business-banking" and cert.customer.code == "B0000001"
    assert "corporation4IB" in cert.subject
    assert CertificateRequest.get_by_id(request.id).status == "issued"
    for link in links:
        response = web.client.get(link)
        assert response.status_code == 200
        if response.mimetype == "application/x-pkcs12":
            bundle = pkcs12.load_pkcs12(response.data, PASSWORD.encode())
            assert len(bundle.additional_certs) == 2
        if response.mimetype == "application/zip":
            names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
            assert all(n.startswith("NPKI/CertCenter/USER/") for n in names) and len(names) == 2
    assert cert.not_after > now()


def test_business_request_rejected_with_a_reason(web, demo, app):
    business = demo["business"]
    _verify_business(web, business, start="/my/")
    request = _requested_by_service(business)
    cli = app.test_cli_runner()
    rejected = cli.invoke(args=["requests", "reject", str(request.id), "--operator", "kim",
                                "--reason", "The business registration has lapsed"])
    assert rejected.exit_code == 0, rejected.output
    assert f"Rejected request {request.id}" in rejected.output
    assert CertificateRequest.get_by_id(request.id).status == "rejected"
    assert "The business registration has lapsed" in last_sms(business)

    mine = web.get("/my/")
    assert "not approved: The business registration has lapsed" in text(mine)
    listed = cli.invoke(args=["requests", "list", "--all"])
    assert "rejected" in listed.output


def test_approving_a_decided_request_again_says_it_was_decided(demo, app):
    request = _requested_by_service(demo["business"])
    cli = app.test_cli_runner()
    assert cli.invoke(args=["requests", "approve", str(request.id), "--operator", "kim", *CHECKED]
                      ).exit_code == 0

    twice = cli.invoke(args=["requests", "approve", str(request.id), "--operator", "kim", *CHECKED])
    output = cli_refused(app, twice)
    assert str(request.id) in output
    assert CertificateRequest.get_by_id(request.id).status == "approved"
    rejected = cli.invoke(args=["requests", "reject", str(request.id), "--reason", "late"])
    cli_refused(app, rejected)
    assert CertificateRequest.get_by_id(request.id).status == "approved"


def test_an_unknown_request_number_says_so(app, demo):
    cli = app.test_cli_runner()
    result = cli.invoke(args=["requests", "approve", "999", "--operator", "kim", *CHECKED])
    assert "999" in cli_refused(app, result)


def test_rejecting_without_a_reason_is_refused(app, demo):
    request = _requested_by_service(demo["business"])
    cli = app.test_cli_runner()
    result = cli.invoke(args=["requests", "reject", str(request.id), "--operator", "kim",
                              "--reason", "  "])
    assert CertificateRequest.get_by_id(request.id).status == "requested"
    cli_refused(app, result)


def test_a_business_that_omits_its_business_number_is_not_verified(web, demo):
    english(web)
    web.get("/verify/")
    details = {k: v for k, v in BUSINESS.items() if k != "business_number"}
    response = web.post("/verify/", details)
    assert response.status_code == 400
    assert title(response).startswith("Error:")
    assert "do not match our records" in text(response)


def test_an_approval_from_the_command_line_follows_the_consoles_rules(app, demo):
    """Documents noted, and four eyes on a business-general certificate: one rule for both."""
    cli = app.test_cli_runner()
    request = _requested_by_service(demo["business"])
    bare = cli.invoke(args=["requests", "approve", str(request.id), "--operator", "kim"])
    assert "대표자 신분증" in cli_refused(app, bare)
    assert CertificateRequest.get_by_id(request.id).status == "requested"

    general = issuance.request_certificate(demo["business"], "business-general")
    first = cli.invoke(args=["requests", "approve", str(general.id), "--operator", "kim",
                             *CHECKED])
    assert first.exit_code == 0 and "second officer" in first.output, first.output
    assert CertificateRequest.get_by_id(general.id).status == "requested"
    own = cli.invoke(args=["requests", "approve", str(general.id), "--operator", "kim", *CHECKED])
    cli_refused(app, own)
    second = cli.invoke(args=["requests", "approve", str(general.id), "--operator", "lee",
                              *CHECKED])
    assert second.exit_code == 0 and f"Approved request {general.id}" in second.output
    assert CertificateRequest.get_by_id(general.id).status == "approved"
