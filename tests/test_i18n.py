"""Translations: every user-facing string has a Korean translation (Korean is the default
language), translations keep their placeholders, and the language is chosen by the `lang`
cookie, then Accept-Language, then Korean.

To fix a failure listing missing msgids: `make messages`, translate the new entries in
translations/ko/LC_MESSAGES/messages.po (and remove any `#, fuzzy` flag), then run the tests."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from services import i18n

REPO = Path(__file__).resolve().parents[1]
TRANSLATIONS = REPO / "translations"
KO_PO = TRANSLATIONS / "ko" / "LC_MESSAGES" / "messages.po"
KO_MO = KO_PO.with_suffix(".mo")

# The same command as `make messages`.
EXTRACT = ["extract", "--no-location", "--omit-header", "-F", "babel.cfg",
           "-k", "_l", "-k", "N_"]

# %(name)s, %(num)d, %(price).2f …; "%%" is a literal percent sign.
PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")


def _read(path: Path, locale=None):
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def _ids(message) -> tuple:
    return message.id if isinstance(message.id, tuple) else (message.id,)


def _strings(message) -> tuple:
    return message.string if isinstance(message.string, tuple) else (message.string,)


def _label(message) -> str:
    return " | ".join(_ids(message))


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogue():
    """Compile the Korean catalogue into place when the .mo is missing or older than the
    .po, so that `pytest` alone works (`make test` compiles it too)."""
    if not KO_MO.exists() or KO_MO.stat().st_mtime < KO_PO.stat().st_mtime:
        catalog = _read(KO_PO, locale="ko")
        partial = KO_MO.with_name(f"messages.mo.{os.getpid()}.tmp")
        with partial.open("wb") as handle:
            write_mo(handle, catalog)
        os.replace(partial, KO_MO)          # atomic: a parallel run never reads half a file
    i18n._catalog.cache_clear()             # forget a catalogue loaded before the .mo existed
    yield
    i18n._catalog.cache_clear()


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """The messages in the source now, extracted the way `make messages` does."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    result = subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "-q", *EXTRACT, "-o", str(pot), "."],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    catalog = _read(pot)
    messages = [m for m in catalog if m.id]
    assert len(messages) > 100, "extraction found suspiciously few messages"
    return messages


@pytest.fixture(scope="module")
def korean():
    return _read(KO_PO, locale="ko")


def test_korean_catalogue_has_one_plural_form(korean):
    assert korean.num_plurals == 1
    assert korean.plural_expr.strip() == "0"


def test_every_message_in_the_source_has_a_korean_translation(extracted, korean):
    missing, fuzzy = [], []
    for message in extracted:
        found = korean.get(message.id, message.context)
        if found is None or not all(s.strip() for s in _strings(found)):
            missing.append(_label(message))
        elif found.fuzzy:
            fuzzy.append(_label(message))
        elif isinstance(message.id, tuple) and len(_strings(found)) != korean.num_plurals:
            missing.append(_label(message) + "  (plural forms)")
    problems = ([f"not translated: {m!r}" for m in missing]
                + [f"fuzzy (check the translation, then remove the flag): {m!r}" for m in fuzzy])
    assert not problems, (f"{len(problems)} message(s) need a Korean translation in "
                          f"{KO_PO.relative_to(REPO)} (run `make messages`):\n"
                          + "\n".join(problems))


def test_translations_keep_their_placeholders(korean):
    problems = []
    for message in korean:
        if not message.id or not any(_strings(message)):
            continue
        wanted = set()
        for msgid in _ids(message):
            wanted |= set(PLACEHOLDER.findall(msgid))
        for translation in _strings(message):
            got = set(PLACEHOLDER.findall(translation))
            if got != wanted:
                problems.append(f"{_label(message)!r}: expected {sorted(wanted)}, "
                                f"got {sorted(got)} in {translation!r}")
            # A stray "%" breaks `text % params` when the message has parameters.
            rest = PLACEHOLDER.sub("", translation).replace("%%", "")
            if wanted and "%" in rest:
                problems.append(f"{_label(message)!r}: stray % in {translation!r}")
    assert not problems, "\n".join(problems)


def test_korean_catalogue_passes_babels_checks(korean):
    errors = [f"{_label(message)!r}: {error}" for message, errs in korean.check()
              for error in errs]
    assert not errors, "\n".join(errors)


def test_text_messages_go_out_in_korean_with_a_findable_code():
    msgid = ("[CertCenter] Your verification code is %(code)s. It works for 3 minutes. "
             "Never tell it to anyone, including bank staff.")
    korean = i18n.translate("ko", msgid, code="123456")
    assert korean.startswith("[인증센터]")
    # The code must stand apart from the Korean around it (a gateway or a test finds it
    # with \b…\b, and Hangul counts as a word character).
    assert re.search(r"\b(\d{6})\b", korean).group(1) == "123456"
    assert i18n.translate("en", msgid, code="123456") == msgid % {"code": "123456"}


# -- choosing the language --------------------------------------------------------------------

def _get(client, url, **kwargs):
    """One request in its own app context, as in production. The `app` fixture keeps an app
    context pushed for the whole test, and Flask-Babel caches the locale in `g`, which lives
    in the app context: without this, the first request's language would stick."""
    with client.application.app_context():
        return client.get(url, **kwargs)


def _page(response) -> str:
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _is_korean(html: str) -> bool:
    return '<html lang="ko">' in html and "본문 바로가기" in html and "인증센터" in html \
        and "Skip to main content" not in html


def _is_english(html: str) -> bool:
    return '<html lang="en">' in html and "Skip to main content" in html \
        and "CertCenter" in html and "본문 바로가기" not in html


def test_korean_is_the_default(app):
    html = _page(_get(app.test_client(), "/"))
    assert _is_korean(html), html[:600]


@pytest.mark.parametrize("accept", ["en", "en-US,en;q=0.9", "fr-FR, en;q=0.5"])
def test_accept_language_english_gives_english(app, accept):
    html = _page(_get(app.test_client(), "/", headers={"Accept-Language": accept}))
    assert _is_english(html), html[:600]


@pytest.mark.parametrize("accept", ["ko", "ko-KR,ko;q=0.9,en;q=0.8", "fr", "*"])
def test_other_accept_languages_give_korean(app, accept):
    html = _page(_get(app.test_client(), "/", headers={"Accept-Language": accept}))
    assert _is_korean(html), html[:600]


def test_the_cookie_wins_over_accept_language(app):
    client = app.test_client()
    client.set_cookie("lang", "en")
    html = _page(_get(client, "/", headers={"Accept-Language": "ko"}))
    assert _is_english(html), html[:600]

    client.set_cookie("lang", "ko")
    html = _page(_get(client, "/", headers={"Accept-Language": "en"}))
    assert _is_korean(html), html[:600]


def test_an_unknown_cookie_value_is_ignored(app):
    client = app.test_client()
    client.set_cookie("lang", "xx")
    assert _is_english(_page(_get(client, "/", headers={"Accept-Language": "en"})))
    assert _is_korean(_page(_get(client, "/", headers={"Accept-Language": "ko"})))


def test_choosing_a_language_sets_the_cookie_and_goes_back(app):
    client = app.test_client()
    response = _get(client, "/lang/en?next=/")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    set_cookie = response.headers["Set-Cookie"]
    assert set_cookie.startswith("lang=en;")
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Path=/" in set_cookie
    assert client.get_cookie("lang").value == "en"
    html = _page(_get(client, "/", headers={"Accept-Language": "ko"}))
    assert _is_english(html)

    response = _get(client, "/lang/ko?next=/support/faq")
    assert response.status_code == 303
    assert response.headers["Location"] == "/support/faq"
    assert _is_korean(_page(_get(client, "/support/faq", headers={"Accept-Language": "en"})))


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/", "http:/evil.example", "javascript:alert(1)",
    "evil.example", "\\\\evil.example", "/\t/evil.example", "",
])
def test_choosing_a_language_never_leaves_the_site(app, target):
    response = _get(app.test_client(), "/lang/en", query_string={"next": target})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_a_backslash_path_cannot_become_another_host(app):
    # Browsers read "/\evil.example" as "//evil.example"; the redirect must not.
    response = _get(app.test_client(), "/lang/en", query_string={"next": "/\\evil.example"})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith("//") and "\\" not in location


def test_an_unknown_language_is_not_found(app):
    assert _get(app.test_client(), "/lang/xx?next=/").status_code == 404
