"""The confirm and done steps that issue and renew share (views.confirm), run on both paths:
a password whose seal no longer opens is asked for again, a second press of the confirm
button signs nothing more, and the done page offers the same single-use links."""
import pytest

from models import Certificate, SerialReservation
from services import issuance
from tests.conftest import text
from tests.test_renewal import PASSWORD, RRN
from tests.test_web_renew import NEW_PASSWORD, log_in_with_files, signed_in_at
from tests.test_web_support import (
    agree_and_choose,
    english,
    h1,
    key_and_password,
    verify_person_by_sms,
)


def _to_issue_check(web, demo):
    english(web)
    verify_person_by_sms(web, demo["person"])
    agree_and_choose(web)
    key_and_password(web)


def _to_renew_check(web, demo):
    result = issuance.issue_certificate(demo["person"], "personal-banking", idn=RRN,
                                        actor="test", password=PASSWORD, offer_downloads=False)
    cert, files = result.certificate, {kind: body for kind, _n, _m, body in result.files}
    signed_in_at(web, demo, cert, days_before=10)
    log_in_with_files(web, files)
    web.post("/renew/key", {"key": "new"})
    check = web.post("/renew/password", {"password": NEW_PASSWORD,
                                         "password_again": NEW_PASSWORD})
    assert check.request.path == "/renew/check", h1(check)


AT_CHECK = {"issue": (_to_issue_check, PASSWORD), "renew": (_to_renew_check, NEW_PASSWORD)}


@pytest.fixture(params=["issue", "renew"])
def flow(request, web, demo):
    """A verified customer on the flow's check-your-answers page, with a new key's password
    sealed in the session."""
    to_check, _password = AT_CHECK[request.param]
    to_check(web, demo)
    return request.param


def _signed() -> int:
    return SerialReservation.select().count()


def test_a_password_whose_seal_no_longer_opens_is_asked_again_on_both_paths(web, flow):
    before = Certificate.select().count(), _signed()
    with web.client.session_transaction() as kept:
        kept[flow] = {**kept[flow], "password": "sealed-under-another-key"}
    answer = web.post(f"/{flow}/check", {}, follow=False)
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"/{flow}/password")
    assert (Certificate.select().count(), _signed()) == before
    # The stale seal is forgotten: check your answers sends back to the password too.
    assert web.client.get(f"/{flow}/check").headers["Location"].endswith(f"/{flow}/password")
    password = AT_CHECK[flow][1]
    check = web.post(f"/{flow}/password", {"password": password, "password_again": password})
    assert check.request.path == f"/{flow}/check"
    done = web.post(f"/{flow}/check", {})
    assert done.request.path == f"/{flow}/done"
    assert Certificate.select().count() == before[0] + 1


def test_a_second_press_of_confirm_signs_and_issues_nothing_more_on_both_paths(web, flow):
    """The second press carries the cookie the page had before the first one answered: it
    stops before the CA key signs anything, so no reservation is left for `jobs run` to
    revoke as signed but never delivered."""
    before = Certificate.select().count()
    token, cookie = web.token, web.client.get_cookie("cc_session").value
    first = web.post(f"/{flow}/check", {})
    assert first.request.path == f"/{flow}/done"
    web.token = token
    web.client.set_cookie("cc_session", cookie)
    second = web.post(f"/{flow}/check", {})
    assert second.status_code in (200, 409)
    assert "Check your answers" not in h1(second)
    assert Certificate.select().count() == before + 1
    assert _signed() == Certificate.select().count()
    assert {r.step for r in SerialReservation.select()} == {"issued"}


def test_the_done_page_offers_each_file_once_on_both_paths(web, flow):
    done = web.post(f"/{flow}/check", {})
    assert done.request.path == f"/{flow}/done"
    page = text(done)
    assert "Download your files" in page and "Each link works once, for 10 minutes" in page
    new = Certificate.select().order_by(Certificate.id.desc()).first()
    assert new.serial in page and "Go to my certificates" in page
    links = [link for link in done.get_data(as_text=True).split('href="')[1:]
             if link.startswith("/download/")]
    assert len(links) == 4                       # NPKI folder, .p12, certificate, chain
    url = links[0].split('"')[0]
    assert web.client.get(url).status_code == 200
    again = web.client.get(url)
    assert again.status_code == 410 and "This link no longer works" in text(again)
    # The done page is the confirm press's own: another flow's done page does not show it.
    other = "renew" if flow == "issue" else "issue"
    assert web.client.get(f"/{other}/done").headers["Location"].endswith("/my/")
