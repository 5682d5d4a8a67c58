"""Copying certificate files between devices: single use, expiry, destruction after five wrong
codes, nothing readable at rest, and the whole round trip across two browser contexts."""
import io
import re
import zipfile

import pytest

from models import Transfer
from services import issuance, limits, transfer
from services.errors import DomainError
from tests.browser import assert_accessible, new_page, submit
from tests.conftest import move_clock

PASSWORD = "Blue!sky42x"


@pytest.fixture
def npki_zip(demo):
    issued = issuance.issue_certificate(demo["person"], "personal-banking", idn="9001011234567",
                                        actor="test", password=PASSWORD, offer_downloads=False)
    return next(content for kind, _n, _m, content in issued.files if kind == "npki")


@pytest.fixture
def loose_files(npki_zip):
    with zipfile.ZipFile(io.BytesIO(npki_zip)) as archive:
        return [(name.rsplit("/", 1)[1], archive.read(name)) for name in archive.namelist()]


def test_the_receiver_gets_exactly_the_zip_that_was_sent_once(npki_zip):
    sent = transfer.send([("my certificate.zip", npki_zip)])
    assert re.fullmatch(r"\d{12}", sent.code)
    received = transfer.receive(f"{sent.code[:4]}-{sent.code[4:8]} {sent.code[8:]}", "10.0.0.1")
    assert received.content == npki_zip and received.filename == "NPKI.zip"
    with pytest.raises(DomainError) as again:
        transfer.receive(sent.code, "10.0.0.1")
    assert again.value.code == "transfer_used" and again.value.status == 410
    assert transfer.progress(sent.transfer.id).state == "received"


def test_loose_files_with_any_names_arrive_in_the_npki_layout(loose_files):
    renamed = [("first.bin", loose_files[0][1]), ("second.bin", loose_files[1][1])]
    sent = transfer.send(renamed)
    archive = zipfile.ZipFile(io.BytesIO(transfer.receive(sent.code, "10.0.0.1").content))
    names = archive.namelist()
    assert any(n.endswith("/signCert.der") for n in names)
    assert {archive.read(n) for n in names} == {content for _name, content in loose_files}


def test_the_files_are_not_readable_at_rest_and_the_code_is_not_kept(npki_zip):
    sent = transfer.send([("NPKI.zip", npki_zip)])
    row = Transfer.get_by_id(sent.transfer.id)
    assert npki_zip[30:80] not in bytes(row.sealed)
    assert sent.code not in row.code_hmac and sent.code[4:] not in str(row.__data__)


def test_a_code_expires_after_10_minutes(npki_zip):
    sent = transfer.send([("NPKI.zip", npki_zip)])
    move_clock(minutes=10, seconds=1)
    with pytest.raises(DomainError) as expired:
        transfer.receive(sent.code, "10.0.0.1")
    assert expired.value.code == "transfer_gone"
    assert transfer.purge() == 1 and Transfer.select().count() == 0


def test_five_wrong_codes_destroy_the_transfer(npki_zip):
    sent = transfer.send([("NPKI.zip", npki_zip)])
    wrong = sent.code[:4] + ("00000000" if sent.code[4:] != "00000000" else "11111111")
    for _ in range(5):
        with pytest.raises(DomainError) as failure:
            transfer.receive(wrong, "10.0.0.1")
        assert failure.value.code == "transfer_code_wrong"
    with pytest.raises(DomainError) as gone:
        transfer.receive(sent.code, "10.0.0.2")          # even the right code, elsewhere
    assert gone.value.code == "transfer_gone"
    assert Transfer.get_by_id(sent.transfer.id).sealed is None
    assert transfer.progress(sent.transfer.id).state == "expired"


def test_wrong_codes_are_limited_per_client_address(npki_zip):
    sent = transfer.send([("NPKI.zip", npki_zip)])
    for n in range(limits.CLIENT_TRIES):
        with pytest.raises(DomainError):
            transfer.receive(f"{(int(sent.code[:4]) + 1) % 10000:04d}{n:08d}", "10.9.9.9")
    with pytest.raises(DomainError) as blocked:
        transfer.receive(sent.code, "10.9.9.9")
    assert blocked.value.code == "client_blocked"
    assert transfer.receive(sent.code, "10.0.0.1").content == npki_zip


@pytest.mark.parametrize("files, code", [
    ([("x.txt", b"hello")], "bundle_empty"),
    ([("a.zip", b"PK\x03\x04garbage")], "bundle_zip_unreadable"),
])
def test_files_that_are_not_a_certificate_are_refused(demo, files, code):
    with pytest.raises(DomainError) as refused:
        transfer.send(files)
    assert refused.value.code in (code, "bundle_unknown_file")
    assert Transfer.select().count() == 0


def test_a_certificate_without_its_key_is_refused(loose_files):
    cert_only = [f for f in loose_files if f[0] == "signCert.der"]
    with pytest.raises(DomainError) as refused:
        transfer.send(cert_only)
    assert refused.value.code == "transfer_incomplete"


def test_an_expired_certificate_is_refused(loose_files):
    move_clock(days=400)
    with pytest.raises(DomainError) as refused:
        transfer.send(loose_files)
    assert refused.value.code == "transfer_expired_certificate"


def test_sending_and_receiving_through_the_pages(web, npki_zip):
    web.get("/transfer/send")
    response = web.post("/transfer/send", {"files": [(io.BytesIO(npki_zip), "NPKI.zip")]},
                        content_type="multipart/form-data")
    assert response.request.path == "/transfer/sent"
    code = "".join(re.search(r'class="transfer-code" aria-label="(\d{4}) (\d{4}) (\d{4})"',
                             response.get_data(as_text=True)).groups())
    assert "<svg" in response.get_data(as_text=True)
    receiver = web.client.application.test_client()
    page = receiver.get("/transfer/receive").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    got = receiver.post("/transfer/receive", data={"csrf_token": token, "code": code})
    assert got.status_code == 200 and got.data == npki_zip
    assert "attachment" in got.headers["Content-Disposition"]
    again = receiver.post("/transfer/receive", data={"csrf_token": token, "code": code})
    assert again.status_code == 410
    web.client.set_cookie("lang", "en")
    assert "Your files were received" in web.get("/transfer/sent").get_data(as_text=True)


def test_the_progress_poll_stops_with_286_once_received(web, npki_zip):
    web.get("/transfer/send")
    web.post("/transfer/send", {"files": [(io.BytesIO(npki_zip), "NPKI.zip")]},
             content_type="multipart/form-data")
    poll = web.client.get("/transfer/sent/progress", headers={"HX-Request": "true"})
    assert poll.status_code == 200 and 'hx-trigger="every 5s"' in poll.get_data(as_text=True)
    sent = Transfer.select().first()
    Transfer.update(received_at=sent.created_at, sealed=None).execute()
    poll = web.client.get("/transfer/sent/progress", headers={"HX-Request": "true"})
    assert poll.status_code == 286 and 'hx-swap-oob' in poll.get_data(as_text=True)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_transfer_between_two_browsers(chromium, live, loose_files, tmp_path, javascript):
    sender = new_page(chromium, live, javascript)
    sender.goto("/transfer/")
    assert_accessible(sender, "transfer start") if javascript else None
    sender.click("main a[href='/transfer/send']")
    submit(sender, javascript)                                     # nothing chosen
    assert sender.locator("#files-error").is_visible()
    assert_accessible(sender, "send, nothing chosen") if javascript else None
    paths = []
    for name, content in loose_files:
        path = tmp_path / name
        path.write_bytes(content)
        paths.append(str(path))
    sender.set_input_files("#files", paths)
    submit(sender, javascript)
    sender.wait_for_url("**/transfer/sent")
    assert_accessible(sender, "sent") if javascript else None
    code = sender.locator(".transfer-code").get_attribute("aria-label").replace(" ", "")

    receiver = new_page(chromium, live, javascript)                 # another device
    receiver.goto("/transfer/receive")
    receiver.fill("#code", "0000 0000 0000")
    receiver.locator("main form button[type=submit]").click()
    receiver.wait_for_selector(".error-summary")
    assert_accessible(receiver, "receive, wrong code") if javascript else None
    receiver.fill("#code", f"{code[:4]} {code[4:8]} {code[8:]}")
    with receiver.expect_download() as info:
        receiver.locator("main form button[type=submit]").click()
    archive = zipfile.ZipFile(info.value.path())
    assert {archive.read(n) for n in archive.namelist()} == {c for _n, c in loose_files}

    if javascript:                                                  # the sender's page learns
        sender.wait_for_selector("#transfer-progress strong", timeout=12000)
        assert sender.locator("#status").inner_text().strip() != ""
    else:
        with sender.expect_navigation():                             # the Refresh link
            sender.click("main a[href='/transfer/sent']")
        assert sender.locator("#transfer-progress strong").count() == 1


def open_file_chooser_by_keyboard(page):
    """Space on the focused file input, as a keyboard user does, and again if no chooser
    came: headless Chromium now and then drops the chooser event of a long test run, where
    a person would simply press again. Fails if the keyboard never opens it."""
    from playwright.sync_api import TimeoutError as NoChooser
    for _ in range(3):
        try:
            with page.expect_file_chooser(timeout=5000) as chooser:
                page.keyboard.press("Space")
            return chooser.value
        except NoChooser:
            assert page.evaluate("document.activeElement.id") == "files"
    raise AssertionError("the file chooser does not open from the keyboard")


def test_sending_and_receiving_by_keyboard(chromium, live, loose_files, tmp_path):
    from tests.browser import tab_to
    page = new_page(chromium, live, True)
    page.goto("/transfer/send")
    paths = []
    for name, content in loose_files:
        (tmp_path / name).write_bytes(content)
        paths.append(str(tmp_path / name))
    tab_to(page, "#files")
    open_file_chooser_by_keyboard(page).set_files(paths)
    tab_to(page, "main form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/transfer/sent")
    code = page.locator(".transfer-code").get_attribute("aria-label").replace(" ", "")
    other = new_page(chromium, live, True)
    other.goto("/transfer/receive")
    tab_to(other, "#code")
    other.keyboard.type(code)
    with other.expect_download() as info:
        other.keyboard.press("Enter")
    assert info.value.suggested_filename == "NPKI.zip"
