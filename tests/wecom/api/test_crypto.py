"""Callback crypto against WeCom's published sample values and an independent implementation.

The known-answer values are those of WeCom's official WXBizMsgCrypt samples
(Sample.cs / Sample.py of the callback SDKs): token QDG6eK, corp id
wx5823bf96d3bd56c7. The independent implementation is wechatpy's
``wechatpy.enterprise.crypto.WeChatCrypto`` (pinned test dependency), which
runs AES through the ``cryptography`` package rather than pycryptodome.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
import xmltodict
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.enterprise.crypto import WeChatCrypto

from wecom.api.crypto import BLOCK_SIZE, WeComAesCipher, WeComCrypto, decode_aes_key
from wecom.errors import CallbackCryptoError, CryptoConfigError, DecryptError, ReceiveIdError, SignatureError

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"

VERIFY_MSG_SIG = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
VERIFY_TIMESTAMP = "1409659589"
VERIFY_NONCE = "263014780"
VERIFY_ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
VERIFY_PLAINTEXT = "1616140317555161061"

REQ_MSG_SIG = "477715d11cdb4164915debcba66cb864d751f3e6"
REQ_TIMESTAMP = "1409659813"
REQ_NONCE = "1372623149"
REQ_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/s"
    "YYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJ"
    "YuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGU"
    "callcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5"
    "Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
REQ_DATA = (
    f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{REQ_ENCRYPT}]]></Encrypt>"
    "<AgentID><![CDATA[218]]></AgentID></xml>"
)
REQ_PLAINTEXT = (
    f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>\n"
    "<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    "<CreateTime>1409659813</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[hello]]></Content>\n"
    "<MsgId>4561255354251345929</MsgId>\n"
    "<AgentID>218</AgentID>\n"
    "</xml>"
)

MESSAGES = [
    "",
    "x",
    "<xml><ChangeType><![CDATA[update_user]]></ChangeType><Name>张三</Name></xml>",
    "a" * 11,  # 16 + 4 + 11 + 18 = 49 bytes: padding 15
    "a" * 26,  # 16 + 4 + 26 + 18 = 64 bytes: a whole 32-byte block of padding
    "é" * 5000,
]


@pytest.fixture
def crypto() -> WeComCrypto:
    return WeComCrypto(TOKEN, AES_KEY, CORP_ID)


@pytest.fixture
def theirs() -> WeChatCrypto:
    return WeChatCrypto(TOKEN, AES_KEY, CORP_ID)


def raw_aes(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    """Unpadded AES-256-CBC with WeCom's IV, through the ``cryptography`` package."""
    cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def verify_and_decrypt(crypto: WeComCrypto, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """What a receiver does with every request: check the signature, then decrypt."""
    crypto.verify_signature(msg_signature, timestamp, nonce, encrypted)
    return crypto.decrypt(encrypted)


# Known answers


def test_published_url_verification_sample(crypto: WeComCrypto) -> None:
    assert crypto.signature(VERIFY_TIMESTAMP, VERIFY_NONCE, VERIFY_ECHOSTR) == VERIFY_MSG_SIG
    assert (
        verify_and_decrypt(crypto, VERIFY_MSG_SIG, VERIFY_TIMESTAMP, VERIFY_NONCE, VERIFY_ECHOSTR) == VERIFY_PLAINTEXT
    )


def test_published_post_sample(crypto: WeComCrypto) -> None:
    encrypted = xmltodict.parse(REQ_DATA)["xml"]["Encrypt"]
    assert encrypted == REQ_ENCRYPT
    assert crypto.signature(REQ_TIMESTAMP, REQ_NONCE, encrypted) == REQ_MSG_SIG
    assert verify_and_decrypt(crypto, REQ_MSG_SIG, REQ_TIMESTAMP, REQ_NONCE, encrypted) == REQ_PLAINTEXT


def test_signature_is_sha1_of_the_sorted_strings(crypto: WeComCrypto) -> None:
    expected = hashlib.sha1("".join(sorted([TOKEN, "1", "b", "A"])).encode()).hexdigest()
    assert crypto.signature("1", "b", "A") == expected
    assert re.fullmatch(r"[0-9a-f]{40}", expected)


def test_published_sample_fails_for_another_corp() -> None:
    other = WeComCrypto(TOKEN, AES_KEY, "wx0000000000000000")
    with pytest.raises(ReceiveIdError):
        other.decrypt(VERIFY_ECHOSTR)


# The independent implementation, both directions


@pytest.mark.parametrize("message", MESSAGES)
def test_ours_encrypts_theirs_decrypts(crypto: WeComCrypto, theirs: WeChatCrypto, message: str) -> None:
    encrypted, signature, timestamp, nonce = crypto.encrypt(message)
    body = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    assert theirs.decrypt_message(body, signature, timestamp, nonce) == message
    assert len(base64.b64decode(encrypted)) % BLOCK_SIZE == 0


@pytest.mark.parametrize("message", MESSAGES)
def test_theirs_encrypts_ours_decrypts(crypto: WeComCrypto, theirs: WeChatCrypto, message: str) -> None:
    reply = xmltodict.parse(theirs.encrypt_message(message, nonce="12345", timestamp="1700000000"))["xml"]
    opened = verify_and_decrypt(crypto, reply["MsgSignature"], reply["TimeStamp"], reply["Nonce"], reply["Encrypt"])
    assert opened == message


def test_theirs_checks_our_signature_for_url_verification(crypto: WeComCrypto, theirs: WeChatCrypto) -> None:
    encrypted, signature, timestamp, nonce = crypto.encrypt("echo-1234")
    assert theirs.check_signature(signature, timestamp, nonce, encrypted) == "echo-1234"


def test_encrypt_uses_given_nonce_and_timestamp_and_fresh_randomness(crypto: WeComCrypto) -> None:
    first = crypto.encrypt("same", nonce="42", timestamp="1700000000")
    second = crypto.encrypt("same", nonce="42", timestamp="1700000000")
    assert first[2:] == second[2:] == ("1700000000", "42")
    assert first[0] != second[0]
    _, _, timestamp, nonce = crypto.encrypt("defaults")
    assert timestamp.isdigit() and nonce.isdigit()


# Export files: the raw layer


@pytest.mark.parametrize("size", [0, 1, 31, 32, 33, 100_000])
def test_export_cipher_round_trip_and_independent_decrypt(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    cipher = WeComAesCipher(AES_KEY)
    encrypted = cipher.encrypt_bytes(data)
    assert len(encrypted) % BLOCK_SIZE == 0 and len(encrypted) > len(data)
    assert cipher.decrypt_bytes(encrypted) == data
    padded = raw_aes(decode_aes_key(AES_KEY), encrypted, decrypt=True)
    assert padded[: len(data)] == data and set(padded[len(data) :]) == {len(padded) - len(data)}


def test_export_cipher_decrypts_independently_encrypted_file() -> None:
    document = b'{"userlist": [{"userid": "zhangsan"}]}'
    pad = BLOCK_SIZE - len(document) % BLOCK_SIZE
    encrypted = raw_aes(decode_aes_key(AES_KEY), document + bytes([pad]) * pad)
    assert WeComAesCipher(AES_KEY).decrypt_bytes(encrypted) == document


# Rejections


def test_wrong_signature_is_rejected(crypto: WeComCrypto) -> None:
    encrypted, signature, timestamp, nonce = crypto.encrypt("hello")
    for bad in ["0" * 40, signature.upper(), signature[:-1], "", "签名"]:
        with pytest.raises(SignatureError):
            crypto.verify_signature(bad, timestamp, nonce, encrypted)
    with pytest.raises(SignatureError):
        crypto.verify_signature(signature, timestamp, nonce + "1", encrypted)
    with pytest.raises(SignatureError):
        WeComCrypto("othertoken", AES_KEY, CORP_ID).verify_signature(signature, timestamp, nonce, encrypted)


@pytest.mark.parametrize("encrypted", ["not base64!", "abc", "éé==", "QUJD" * 3 + "=", ""])
def test_non_base64_or_misaligned_ciphertext_is_rejected(crypto: WeComCrypto, encrypted: str) -> None:
    with pytest.raises(DecryptError):
        crypto.decrypt(encrypted)


@pytest.mark.parametrize(
    "tail",
    [
        bytes([0]),  # pad 0
        bytes([33]),  # pad beyond the 32-byte block
        bytes([7, 7, 7, 5, 7, 7, 7]),  # inconsistent pad bytes (last says 7)
    ],
)
def test_bad_padding_is_rejected(crypto: WeComCrypto, tail: bytes) -> None:
    key = decode_aes_key(AES_KEY)
    body = b"r" * 16 + (4).to_bytes(4, "big") + b"abcd" + CORP_ID.encode()
    plain = body + b"\x01" * (64 - len(body) - len(tail)) + tail
    encrypted = base64.b64encode(raw_aes(key, plain)).decode()
    with pytest.raises(DecryptError, match="padding"):
        crypto.decrypt(encrypted)


@pytest.mark.parametrize("declared_length", [100, 2**32 - 1])
def test_length_field_beyond_the_payload_is_rejected(crypto: WeComCrypto, declared_length: int) -> None:
    framed = b"r" * 16 + declared_length.to_bytes(4, "big") + b"abcd" + CORP_ID.encode()
    encrypted = base64.b64encode(crypto.encrypt_bytes(framed)).decode()
    with pytest.raises(DecryptError, match="length"):
        crypto.decrypt(encrypted)


def test_too_short_payload_is_rejected(crypto: WeComCrypto) -> None:
    encrypted = base64.b64encode(crypto.encrypt_bytes(b"short")).decode()
    with pytest.raises(DecryptError):
        crypto.decrypt(encrypted)


def test_another_receive_id_is_rejected(crypto: WeComCrypto) -> None:
    encrypted, *_ = WeComCrypto(TOKEN, AES_KEY, "wwsomeothercorp").encrypt("<xml/>")
    with pytest.raises(ReceiveIdError):
        crypto.decrypt(encrypted)
    encrypted, *_ = WeComCrypto(TOKEN, AES_KEY, CORP_ID + "x").encrypt("<xml/>")
    with pytest.raises(ReceiveIdError):
        crypto.decrypt(encrypted)


def test_export_decrypt_rejects_misaligned_or_empty_data() -> None:
    cipher = WeComAesCipher(AES_KEY)
    for data in [b"", b"x" * 15, b"x" * 33]:
        with pytest.raises(DecryptError):
            cipher.decrypt_bytes(data)


# Configuration


@pytest.mark.parametrize("key", [AES_KEY[:42], AES_KEY + "A", AES_KEY[:42] + "+", AES_KEY[:42] + "=", ""])
def test_malformed_aes_key_is_rejected_naming_the_field(key: str) -> None:
    with pytest.raises(CryptoConfigError, match="encoding_aes_key") as excinfo:
        WeComCrypto(TOKEN, key, CORP_ID)
    assert not key or key not in str(excinfo.value)


@pytest.mark.parametrize("token", ["", "a" * 33, "tok-en", "tok en", "令牌"])
def test_malformed_token_is_rejected(token: str) -> None:
    with pytest.raises(CryptoConfigError, match="callback_token"):
        WeComCrypto(token, AES_KEY, CORP_ID)


def test_longest_token_and_empty_receive_id() -> None:
    WeComCrypto("a" * 32, AES_KEY, CORP_ID)
    with pytest.raises(CryptoConfigError, match="receive_id"):
        WeComCrypto(TOKEN, AES_KEY, "")


def test_errors_and_repr_hold_no_secret_or_plaintext(crypto: WeComCrypto) -> None:
    secret_plaintext = "<xml><Mobile>13800000000</Mobile></xml>"
    encrypted, signature, timestamp, nonce = WeComCrypto(TOKEN, AES_KEY, "wwother").encrypt(secret_plaintext)
    failures: list[CallbackCryptoError] = []
    for call in [
        lambda: crypto.verify_signature("0" * 40, timestamp, nonce, encrypted),
        lambda: crypto.decrypt(encrypted),
        lambda: crypto.decrypt(encrypted[:-8] + "AAAAAAA="),
        lambda: WeComCrypto(TOKEN, AES_KEY[:42], CORP_ID),
    ]:
        with pytest.raises(CallbackCryptoError) as excinfo:
            call()
        failures.append(excinfo.value)
    texts = [str(f) for f in failures] + [repr(crypto), repr(WeComAesCipher(AES_KEY))]
    for text in texts:
        for secret in (TOKEN, AES_KEY, AES_KEY[:42], "13800000000", signature):
            assert secret not in text
