"""Browser-test support: the app served on a free 127.0.0.1 port, Debian's Chromium driven by
Playwright, and axe-core run in the page. Without Chromium the tests skip, unless
CERTCENTER_REQUIRE_BROWSER=1 (as in CI), where they fail. The fixtures are made available
to every test module by tests/conftest.py (imported there once, so that the session-wide
browser is really one)."""
import json
import os
import shutil
import threading
import weakref
from pathlib import Path

import pytest
from werkzeug.serving import make_server

AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def _unavailable(why: str):
    if os.environ.get("CERTCENTER_REQUIRE_BROWSER") == "1":
        pytest.fail(why + " (CERTCENTER_REQUIRE_BROWSER=1)")
    pytest.skip(why)


@pytest.fixture(scope="session")
def chromium():
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _unavailable("Debian's chromium is not installed")
    if not AXE.exists():
        _unavailable("axe-core is not installed (npm ci)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


_open_contexts = []


@pytest.fixture
def live(app):
    """The test's app, served for real on 127.0.0.1. The browser contexts a test opened close
    with it, so that later tests do not share the browser with stale pages."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    while _open_contexts:
        _open_contexts.pop().close()
    server.shutdown()
    thread.join()


def new_page(chromium, live, javascript=True, language="ko-KR"):
    context = chromium.new_context(base_url=live, java_script_enabled=javascript,
                                   locale=language, accept_downloads=True)
    context.set_default_timeout(15000)
    _open_contexts.append(context)
    page = context.new_page()
    page.bring_to_front()      # keyboard-opened file choosers need the focused page
    if not javascript:
        _without_javascript.add(page)
    return page


_without_javascript = weakref.WeakSet()


def _scriptless_copy(page):
    """axe-core needs timers, which never fire in a page with JavaScript off: axe would wait
    for ever. So the page as it stands is opened again with JavaScript on for axe only, but
    with every script the page itself loads refused, as the person without JavaScript has it."""
    context = page.context.browser.new_context(base_url=page.url, locale="en-US",
                                               viewport=page.viewport_size)
    _open_contexts.append(context)
    html = page.content()
    context.route("**/*.js*", lambda route: route.abort())
    context.route(page.url, lambda route: route.fulfill(
        status=200, content_type="text/html; charset=utf-8", body=html))
    copy = context.new_page()
    copy.goto(page.url)
    return copy


def assert_accessible(page, what: str) -> None:
    """axe-core over the whole page, WCAG 2.2 A and AA rules: zero violations."""
    if page in _without_javascript:
        page = _scriptless_copy(page)
    page.evaluate(AXE.read_text(encoding="utf-8"))
    violations = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
        ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}))", WCAG)
    assert violations == [], f"axe on {what}:\n" + json.dumps(violations, indent=1,
                                                             ensure_ascii=False)


def tab_to(page, selector: str, limit: int = 60) -> None:
    """Press Tab until `selector` has focus, as a keyboard user would."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)",
                         selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} cannot be reached with Tab")


def submit(page, javascript: bool, button: str = "main form button[type=submit]"):
    """Press the form's main button (or `button`); with htmx, wait for the swap or the
    redirect."""
    page.locator(button).first.click()
    page.wait_for_load_state()
    if javascript:
        page.wait_for_function("() => !document.querySelector('.htmx-request')")


def verify_identity(page, customer, javascript: bool = True):
    """Identity verification by text message, from the identity page the flow sent us to;
    the caller looks at the page the flow goes on to."""
    from tests.conftest import PERSON, sms_code  # conftest imports this module
    page.wait_for_url("**/verify/")
    for field, value in PERSON.items():
        page.fill(f"#{field}", value)
    submit(page, javascript)
    page.wait_for_url("**/verify/method")
    page.check("#method")                                     # by text message
    submit(page, javascript)
    page.wait_for_url("**/verify/code")
    page.fill("#code", sms_code(customer))
    submit(page, javascript)


def verify_identity_by_keyboard(page, customer):
    """The same, typing and pressing keys only."""
    from tests.conftest import PERSON, sms_code
    page.wait_for_url("**/verify/")
    for field, value in PERSON.items():
        tab_to(page, f"#{field}")
        page.keyboard.type(value)
    page.keyboard.press("Enter")
    page.wait_for_url("**/verify/method")
    tab_to(page, "#method")
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.wait_for_url("**/verify/code")
    tab_to(page, "#code")
    page.keyboard.type(sms_code(customer))
    page.keyboard.press("Enter")
