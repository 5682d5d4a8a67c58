"""Serial numbers: entropy, range and the 40-digit hex storage form."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pki.errors import PkiError
from pki.serials import parse_serial_hex, random_serial, serial_hex


def test_random_serials_are_unique_positive_and_in_range():
    serials = [random_serial() for _ in range(1000)]
    assert len(set(serials)) == 1000
    assert all(0 < s < 2**159 for s in serials)
    assert all(s.bit_length() >= 64 for s in serials)
    # Fits RFC 5280's 20 octets as a positive DER INTEGER (no sign octet needed).
    assert all(len(s.to_bytes(20, "big", signed=True)) == 20 for s in serials)


def test_serial_hex_round_trip():
    s = random_serial()
    text = serial_hex(s)
    assert len(text) == 40 and text == text.lower()
    assert parse_serial_hex(text) == s
    assert serial_hex(0x459C75) == "0" * 34 + "459c75"


def test_parse_accepts_upper_case_and_colons():
    assert parse_serial_hex("45:9C:75") == 0x459C75
    assert parse_serial_hex(" 459c75\n") == 0x459C75


@pytest.mark.parametrize("bad", ["", "0", "00:00", "xyz", "1" * 41, "12 34", "-1", "0x12"])
def test_parse_rejects_invalid(bad):
    with pytest.raises(PkiError) as e:
        parse_serial_hex(bad)
    assert e.value.code == "serial_invalid"


@given(st.text(max_size=60))
def test_parse_raises_only_pki_error(text):
    try:
        parse_serial_hex(text)
    except PkiError:
        pass
