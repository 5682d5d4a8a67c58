"""Findings of a new user's walkthrough (B1-B10 and wording), each pinned by a test."""
import re

import pytest

from tests.test_web_support import english

START_PAGES = ["/issue/", "/renew/", "/revoke/", "/suspend/", "/resume/", "/register/",
               "/transfer/"]


@pytest.mark.parametrize("url", START_PAGES)
def test_start_links_are_real_links_that_look_like_buttons(web, url):
    html = web.get(url).get_data(as_text=True)
    links = re.findall(r'<a [^>]*class="button[^"]*"[^>]*>', html)
    assert links, "a start link styled as a button"
    for link in links:
        assert "role=" not in link, link          # a link: Enter follows it, as people expect
