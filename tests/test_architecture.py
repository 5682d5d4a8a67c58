"""The four rooms keep their arrows (views -> services -> pki, models), and the pages keep
their weight budgets."""
import ast
import gzip
from pathlib import Path

import pytest

from tests.conftest import BUSINESS, REPO, verify_by_sms

FORBIDDEN = {
    "pki": {"flask", "flask_babel", "flask_wtf", "peewee", "playhouse", "models", "services",
            "views"},
    "models": {"flask", "flask_babel", "flask_wtf", "services", "views"},
    "services": {"views", "flask_wtf"},
}


def imports(path: Path) -> set[tuple[str, tuple]]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {(alias.name, ()) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add((node.module, tuple(alias.name for alias in node.names)))
    return found


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_each_room_imports_only_what_it_may(room):
    wrong = []
    for path in sorted((REPO / room).rglob("*.py")):
        for module, names in imports(path):
            top = module.split(".")[0]
            if top in FORBIDDEN[room]:
                wrong.append(f"{path.relative_to(REPO)} imports {module}")
            if room == "services" and top == "flask" and {"request", "session", "g"} & set(names):
                wrong.append(f"{path.relative_to(REPO)} reads the request from {module}")
    assert wrong == []


def test_every_module_says_what_it_is_for():
    missing = [str(p.relative_to(REPO)) for room in ("pki", "services", "models", "views")
               for p in (REPO / room).rglob("*.py")
               if not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))
               and p.read_text(encoding="utf-8").strip()]
    assert missing == []


def gzipped(data: bytes) -> int:
    return len(gzip.compress(data, 9))


def test_css_and_our_javascript_stay_within_budget():
    assert gzipped((REPO / "static" / "app.css").read_bytes()) <= 8 * 1024
    assert len((REPO / "static" / "app.js").read_bytes()) <= 2 * 1024 or \
        gzipped((REPO / "static" / "app.js").read_bytes()) <= 2 * 1024


def test_every_page_of_the_flow_fits_the_first_round_trip(web, demo):
    pages = ["/", "/issue/", "/verify/", "/support/faq", "/support/security", "/renew/",
             "/revoke/", "/transfer/", "/register/"]
    sizes = {path: gzipped(web.get(path).get_data()) for path in pages}
    verify_by_sms(web, demo["person"])
    for path in ("/my/", "/issue/terms", "/my/authenticator/confirm", "/renew/certificate",
                 "/renew/certificate/files", "/renew/certificate/signature", "/transfer/send",
                 "/files/password"):
        response = web.get(path)
        assert response.status_code == 200, path
        sizes[path] = gzipped(response.get_data())
    web.post("/verify/signout", {})
    verify_by_sms(web, demo["business"], details=BUSINESS)      # no app yet: the QR code page
    response = web.get("/my/authenticator")
    assert response.status_code == 200
    sizes["/my/authenticator"] = gzipped(response.get_data())
    assert {p: s for p, s in sizes.items() if s > 14 * 1024} == {}, sizes


def test_no_page_loads_anything_from_another_origin(web):
    html = web.get("/").get_data(as_text=True)
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
