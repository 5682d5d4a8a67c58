"""NPKI files against the pypinksign vectors, our own round trip, the VID and the NPKI zip."""

import hashlib
import io
import zipfile

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from pki import ca, npki, profile
from pki.errors import PkiError

PASSWORD = "Kor3a!Bank#"
RANDOM_NUM = bytes(range(1, 21))
RRN = "9001011234567"


@pytest.fixture(scope="module")
def vector(vectors):
    return {
        "key": (vectors / "signPri.key").read_bytes(),
        "password": (vectors / "password.txt").read_text().strip(),
        "plain": (vectors / "expected-plain-pkcs8.der").read_bytes(),
        "cert": x509.load_der_x509_certificate((vectors / "signCert.der").read_bytes()),
    }


def test_vector_decrypts_byte_for_byte(vector):
    assert npki.decrypt_private_key_info(vector["key"], vector["password"]) == vector["plain"]


def test_vector_key_and_random_num(vector):
    key, random_num = npki.read_private_key(vector["key"], vector["password"])
    assert random_num.hex() == "7858b4328390805129f01c97fe6ca4a520cbd479"
    assert key.public_key().public_numbers() == vector["cert"].public_key().public_numbers()


def test_vector_reencrypts_to_the_same_file(vector):
    # Same salt and iterations as the vector: our writer produces exactly pypinksign's bytes.
    key, random_num = npki.read_private_key(vector["key"], vector["password"])
    again = npki.encrypt_private_key(key, vector["password"], random_num, 2048, bytes.fromhex("c8ea2fa25023c285"))
    assert again == vector["key"]


def test_vector_identify_data(vector):
    real_name, vid = npki.read_identify_data(vector["cert"])
    assert real_name == "HKD"
    assert vid.hex() == "8ad4f673412f825da4d1fb4d4216946bbc7f8194a0af01f86622ee23c7ee0de7"
    assert npki.identify_data(real_name, vid) == bytes.fromhex(
        "30480c03484b443041303f060a2a831a8c9a440a0101013031300b0609608648016503040201a0220420") + vid


def test_vector_folder_name(vector):
    assert npki.subject_folder_name(vector["cert"]) == \
        "cn=HKD(KILDONG.HONG)009104120200225191000030,ou=INITECH,ou=personal4IB,o=yessign,c=kr"


def test_vector_wrong_password(vector):
    with pytest.raises(PkiError) as e:
        npki.read_private_key(vector["key"], vector["password"] + "x")
    assert e.value.code == "key_password_incorrect"


@pytest.mark.parametrize("random_num", [RANDOM_NUM, None])
def test_round_trip(ee_key, random_num):
    data = npki.encrypt_private_key(ee_key, PASSWORD, random_num)
    key, got = npki.read_private_key(data, PASSWORD)
    assert key.private_numbers() == ee_key.private_numbers()
    assert got == random_num


def test_salt_is_random(ee_key):
    assert npki.encrypt_private_key(ee_key, PASSWORD, None) != npki.encrypt_private_key(ee_key, PASSWORD, None)


def test_wrong_passwords_never_load(ee_key):
    # About 1 wrong password in 256 leaves valid padding (2000 tries: ~8 expected); the key
    # parse must still refuse those.
    data = npki.encrypt_private_key(ee_key, PASSWORD, RANDOM_NUM, iterations=1)
    for i in range(2000):
        with pytest.raises(PkiError) as e:
            npki.read_private_key(data, f"wrong{i}")
        assert e.value.code == "key_password_incorrect"


@pytest.mark.parametrize("data", [b"", b"garbage", b"\x30\x00", b"\x30\x03\x02\x01\x00"])
def test_garbage_is_unreadable(data):
    with pytest.raises(PkiError) as e:
        npki.read_private_key(data, PASSWORD)
    assert e.value.code == "key_unreadable"


def test_huge_iteration_count_is_refused(ee_key):
    data = npki.encrypt_private_key(ee_key, PASSWORD, None, iterations=0x10000)
    # Raise the INTEGER 65536 (02 03 010000) to 8388607, over the reader's bound, at the same length.
    patched = data.replace(b"\x02\x03\x01\x00\x00", b"\x02\x03\x7f\xff\xff", 1)
    assert patched != data
    with pytest.raises(PkiError) as e:
        npki.read_private_key(patched, PASSWORD)
    assert e.value.code == "kdf_over_cap" and "iteration" in e.value.detail


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_garbage_raises_only_pki_error(data):
    try:
        npki.read_private_key(data, PASSWORD)
    except PkiError:
        pass


def test_vid_in_issued_certificate(ca_keys, make_request, ee_key):
    vid = npki.compute_vid(RRN, RANDOM_NUM)
    req = make_request(identify_data=npki.identify_data("홍길동", vid))
    cert = ca.sign_certificate(profile.end_entity_builder(req, ca_keys.issuing_cert), ca_keys.issuing_key)
    # What a bank does later: from the RRN the customer gives and the randomNum in their key file.
    _, random_num = npki.read_private_key(npki.encrypt_private_key(ee_key, PASSWORD, RANDOM_NUM), PASSWORD)
    assert npki.read_identify_data(cert) == ("홍길동", npki.compute_vid(RRN, random_num))
    assert npki.compute_vid("9001011234568", random_num) != vid


def test_compute_vid_matches_the_definition():
    # DER by hand: SEQUENCE { PrintableString "123", BIT STRING 00 'ab' }
    der = bytes.fromhex("3009" "1303313233" "030200ab")
    assert npki.compute_vid("123", b"\xab") == hashlib.sha256(hashlib.sha256(der).digest()).digest()
    with pytest.raises(PkiError):
        npki.compute_vid("900101-1234567", RANDOM_NUM)


def test_no_identify_data(ca_keys):
    assert npki.read_identify_data(ca_keys.root_cert) is None


def test_folder_name_is_path_safe(ca_keys, make_request):
    req = make_request(holder_name="../a/b\\c", bank_code="..")
    cert = ca.sign_certificate(profile.end_entity_builder(req, ca_keys.issuing_cert), ca_keys.issuing_key)
    name = npki.subject_folder_name(cert)
    assert "/" not in name and "\\" not in name and ".." not in name
    assert name.startswith("cn=___a_b_c()0012345678901234,ou=__,ou=personal4IB,")


def test_npki_zip(ca_keys, make_request, ee_key):
    cert = ca.sign_certificate(profile.end_entity_builder(make_request(), ca_keys.issuing_cert), ca_keys.issuing_key)
    key_file = npki.encrypt_private_key(ee_key, PASSWORD, RANDOM_NUM)
    data = npki.npki_zip(cert, key_file, "CertCenter")
    folder = "NPKI/CertCenter/USER/cn=홍길동()0012345678901234,ou=CCBANK,ou=personal4IB,o=CertCenter,c=KR"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == [f"{folder}/signCert.der", f"{folder}/signPri.key"]
        assert all(info.flag_bits & 0x800 for info in zf.infolist())
        assert x509.load_der_x509_certificate(zf.read(f"{folder}/signCert.der")) == cert
        assert zf.read(f"{folder}/signPri.key") == key_file
        assert zf.infolist()[0].date_time == (2025, 3, 2, 14, 0, 0)
    assert npki.npki_zip(cert, key_file, "CertCenter") == data  # reproducible


@pytest.mark.parametrize("scheme", ["seed-cbc-sha1", "pbes2-seed-sha1"])  # it knows no other PRF
def test_pypinksign_opens_the_keys_we_write(ee_key, ee_cert, scheme):
    """An independent reader: PyPinkSign's own SEED code decrypts what our writer produced."""
    from cryptography.hazmat.primitives.serialization import Encoding
    from pypinksign import PinkSign
    data = npki.encrypt_private_key(ee_key, PASSWORD, RANDOM_NUM, scheme=scheme)
    reader = PinkSign(pubkey_data=ee_cert.public_bytes(Encoding.DER))
    reader.load_prikey(prikey_data=data, prikey_password=PASSWORD.encode())
    assert reader.prikey.private_numbers() == ee_key.private_numbers()
