"""The KISA certificate-password rule: each rule alone, and passwords that pass."""

import pytest

from pki.passwords import password_problems


@pytest.mark.parametrize("pw", ["Kor3a!Bank", "z8#Qm2@pLw", "Ab1!Ab1!Ab1!", "x" + "9!Mq" * 15 + "aZ1"])
def test_valid_passwords(pw):
    assert password_problems(pw) == []


@pytest.mark.parametrize("pw, rule", [
    ("Ko3a!Bn", "length"),                 # 7 characters
    ("Ab1!" + "x9!Q" * 15 + "a", "length"),  # 65 characters
    ("13579!2468#", "letter"),
    ("Korea!Bank#", "digit"),
    ("Kor3aBank9Z", "special"),
    ("Kor3a'Bank!", "forbidden_char"),
    ('Kor3a"Bank!', "forbidden_char"),
    ("Kor3a\\Bank!", "forbidden_char"),
    ("Kor3a|Bank!", "forbidden_char"),
    ("Kor3a!Bxyz", "sequence"),            # abc-style
    ("Kor3a!BZYX", "sequence"),            # descending, upper case
    ("Kor!a123Bm", "sequence"),            # 123
    ("Kor!a987Bm", "sequence"),            # 321-style
    ("Kor!aAbCm9", "sequence"),            # case-insensitive abc
    ("Kor3a!Bnnn", "repeat"),
    ("Kor!a111Bm", "repeat"),
])
def test_each_rule_alone(pw, rule):
    assert password_problems(pw) == [rule]


def test_several_rules_reported_in_order():
    assert password_problems("aaa") == ["length", "digit", "special", "repeat"]
    assert password_problems("") == ["length", "letter", "digit", "special"]


def test_non_sequences():
    # Mixed classes and non-adjacent steps are not sequences; 8-9-0 does not wrap.
    assert password_problems("Ka1b!890Mq") == []
    assert password_problems("Kace!1357Q") == []
