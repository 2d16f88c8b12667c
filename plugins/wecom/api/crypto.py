"""WeCom's callback crypto (the published WXBizMsgCrypt scheme), without Airflow.

A callback is authentic when its SHA-1 signature (token, timestamp, nonce and
ciphertext, sorted and joined) matches and its ciphertext decrypts, under the
shared EncodingAESKey, to a message framed for our receive id (the corp id for
contact-sync callbacks). AES-256-CBC uses the key's first 16 bytes as IV and
PKCS#7 padding to 32-byte blocks, not AES's 16.

Export files (``export/*``) use the same key, cipher and padding but carry the
JSON document bare: no random prefix, length or receive id, and no base64 (the
file body is the ciphertext). ``WeComAesCipher`` is that raw layer; the
simulator encrypts export files with it and the extractor decrypts them.

Errors never carry the token, the key or any plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Iterator

from Crypto.Cipher import AES

from wecom.errors import CryptoConfigError, DecryptError, ReceiveIdError, SignatureError

BLOCK_SIZE = 32
_RANDOM_PREFIX = 16
_LENGTH_FIELD = 4
_KEY_PATTERN = re.compile(r"[A-Za-z0-9]{43}")
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9]{1,32}")


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key behind a 43-character EncodingAESKey."""
    if not _KEY_PATTERN.fullmatch(encoding_aes_key or ""):
        raise CryptoConfigError(
            f"encoding_aes_key must be exactly 43 letters or digits (got {len(encoding_aes_key or '')} characters)"
        )
    return base64.b64decode(encoding_aes_key + "=")


def _pad(data: bytes) -> bytes:
    count = BLOCK_SIZE - len(data) % BLOCK_SIZE
    return data + bytes([count]) * count


def _check_length(total: int) -> None:
    if not total or total % AES.block_size:
        raise DecryptError("ciphertext length is not a positive multiple of the AES block size")


def _unpad(data: bytes) -> bytes:
    count = data[-1]
    if not 1 <= count <= BLOCK_SIZE or count > len(data) or data[-count:] != bytes([count]) * count:
        raise DecryptError("ciphertext has invalid PKCS#7 padding")
    return data[:-count]


class WeComAesCipher:
    """AES-256-CBC with WeCom's key, IV and 32-byte padding; the raw layer of export files."""

    def __init__(self, encoding_aes_key: str) -> None:
        self._key = decode_aes_key(encoding_aes_key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<key hidden>)"

    def encrypt_bytes(self, data: bytes) -> bytes:
        """Ciphertext of ``data`` exactly as an export file stores it."""
        return AES.new(self._key, AES.MODE_CBC, self._key[:16]).encrypt(_pad(data))

    def decrypt_bytes(self, data: bytes) -> bytes:
        """The inverse of ``encrypt_bytes``; raises ``DecryptError`` on anything malformed."""
        _check_length(len(data))
        return _unpad(AES.new(self._key, AES.MODE_CBC, self._key[:16]).decrypt(data))

    def decrypt_stream(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """``decrypt_bytes`` piece by piece, for export files too large to hold in memory.

        CBC decrypts block by block, so the cipher carries over between pieces;
        the last 32 bytes are held back until the end, where the padding is checked.
        """
        cipher = AES.new(self._key, AES.MODE_CBC, self._key[:16])
        pending = b""
        total = 0
        for chunk in chunks:
            pending += chunk
            total += len(chunk)
            usable = (len(pending) - BLOCK_SIZE) // AES.block_size * AES.block_size
            if usable > 0:
                yield cipher.decrypt(pending[:usable])
                pending = pending[usable:]
        _check_length(total)
        yield _unpad(cipher.decrypt(pending))


class WeComCrypto(WeComAesCipher):
    """Signs, verifies, encrypts and decrypts callback messages for one receive id."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not _TOKEN_PATTERN.fullmatch(token or ""):
            raise CryptoConfigError("token (the connection's callback_token) must be 1 to 32 letters or digits")
        if not receive_id:
            raise CryptoConfigError("receive_id (the corp id) must not be empty")
        super().__init__(encoding_aes_key)
        self._token = token
        self._receive_id = receive_id.encode("utf-8")

    @property
    def receive_id(self) -> str:
        return self._receive_id.decode("utf-8")

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        """Lowercase hex SHA-1 of token, timestamp, nonce and ciphertext, sorted and joined."""
        joined = "".join(sorted((self._token, timestamp, nonce, encrypted)))
        return hashlib.sha1(joined.encode("utf-8")).hexdigest()  # noqa: S324 (WeCom's protocol is SHA-1)

    def verify_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        """Raise ``SignatureError`` unless ``msg_signature`` matches; compares in constant time."""
        expected = self.signature(timestamp, nonce, encrypted).encode("ascii")
        if not hmac.compare_digest(expected, msg_signature.encode("utf-8", "replace")):
            raise SignatureError("msg_signature does not match")

    def decrypt(self, encrypted_b64: str) -> str:
        """The message inside a base64 ciphertext, after checking framing and receive id."""
        try:
            raw = base64.b64decode(encrypted_b64.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            raise DecryptError("ciphertext is not valid base64") from None
        plain = self.decrypt_bytes(raw)
        start = _RANDOM_PREFIX + _LENGTH_FIELD
        if len(plain) < start:
            raise DecryptError("decrypted payload is too short to hold a message")
        end = start + int.from_bytes(plain[_RANDOM_PREFIX:start], "big")
        if end > len(plain):
            raise DecryptError("decrypted message length exceeds the payload")
        if not hmac.compare_digest(plain[end:], self._receive_id):
            raise ReceiveIdError("message was encrypted for a different receive id")
        try:
            return plain[start:end].decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptError("decrypted message is not UTF-8") from None

    def encrypt(
        self, plaintext: str, nonce: str | None = None, timestamp: str | None = None
    ) -> tuple[str, str, str, str]:
        """``(encrypt_b64, signature, timestamp, nonce)`` for ``plaintext``, as WeCom would send it.

        Used by the simulator and tests to play WeCom; nonce and timestamp
        default to a random number and now.
        """
        message = plaintext.encode("utf-8")
        framed = secrets.token_bytes(_RANDOM_PREFIX) + len(message).to_bytes(4, "big")
        encrypted = base64.b64encode(self.encrypt_bytes(framed + message + self._receive_id)).decode("ascii")
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        return encrypted, self.signature(timestamp, nonce, encrypted), timestamp, nonce
