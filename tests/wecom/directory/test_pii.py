"""PII modes: keep, hash (salted SHA-256), drop; applied before the row hash."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from wecom.directory.pii import PiiPolicy
from wecom.directory.transform import transform_users
from wecom.errors import PiiConfigError

RAW = pd.DataFrame(
    [
        {"userid": "alice", "name": "Alice", "mobile": "13800000000", "email": "a@example.com", "department": [1]},
        {"userid": "bob", "name": "Bob", "mobile": None, "email": "b@example.com", "department": [1]},
    ]
)


def users(policy: PiiPolicy) -> pd.DataFrame:
    return transform_users(RAW, "wwcorp", policy)[0].set_index("userid")


def test_keep_is_the_default() -> None:
    assert users(PiiPolicy()).loc["alice", "mobile"] == "13800000000"


def test_hash_is_salted_sha256_and_keeps_missing_values_missing() -> None:
    out = users(PiiPolicy.from_option({"mobile": "hash"}, salt="pepper"))
    assert out.loc["alice", "mobile"] == hashlib.sha256(b"pepper13800000000").hexdigest()
    assert pd.isna(out.loc["bob", "mobile"])
    assert out.loc["alice", "email"] == "a@example.com"


def test_drop_stores_null_and_changes_the_row_hash() -> None:
    kept, dropped = users(PiiPolicy()), users(PiiPolicy.from_option({"email": "drop", "mobile": "drop"}))
    assert dropped["email"].isna().all() and dropped["mobile"].isna().all()
    assert (kept["row_hash"] != dropped["row_hash"]).all()


def test_a_different_salt_gives_different_digests() -> None:
    one = users(PiiPolicy.from_option({"email": "hash"}, salt="a"))
    two = users(PiiPolicy.from_option({"email": "hash"}, salt="b"))
    assert one.loc["alice", "email"] != two.loc["alice", "email"]


@pytest.mark.parametrize(
    ("option", "salt", "message"),
    [
        ({"phone": "hash"}, "s", "pii.phone: unknown field"),
        ({"email": "encrypt"}, "s", "pii.email: unknown mode"),
        ({"email": "hash"}, None, "needs a salt"),
    ],
)
def test_bad_options_name_the_key(option: dict, salt: str | None, message: str) -> None:
    with pytest.raises(PiiConfigError, match=message):
        PiiPolicy.from_option(option, salt)


def test_the_salt_is_not_in_the_repr() -> None:
    assert "pepper" not in repr(PiiPolicy.from_option({"email": "hash"}, salt="pepper"))
