"""Per-company handling of members' contact fields: keep, hash (salted SHA-256) or drop.

The policy is applied in the transform, before the row hash, so the current
tables, the history and the callback path all store the same form, and
changing a member's phone still shows up as a change when it is hashed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wecom.errors import PiiConfigError

if TYPE_CHECKING:  # the policy is parsed where DAG files are (wecom.companies); only the transform applies it
    import pandas as pd

PII_FIELDS = ("mobile", "email", "biz_mail", "telephone", "address")
MODES = ("keep", "hash", "drop")


@dataclass(frozen=True)
class PiiPolicy:
    """``modes`` maps a PII field to ``hash`` or ``drop``; fields not named are kept."""

    modes: Mapping[str, str] = field(default_factory=dict)
    salt: str | None = field(default=None, repr=False)

    @classmethod
    def from_option(cls, option: Mapping[str, str] | None, salt: str | None = None) -> PiiPolicy:
        """From a company's ``pii`` option, e.g. ``{"mobile": "hash", "address": "drop"}``."""
        modes = dict(option or {})
        for name, mode in modes.items():
            if name not in PII_FIELDS:
                raise PiiConfigError(f"pii.{name}: unknown field; PII fields are {', '.join(PII_FIELDS)}")
            if mode not in MODES:
                raise PiiConfigError(f"pii.{name}: unknown mode {mode!r}; use one of {', '.join(MODES)}")
        if "hash" in modes.values() and not salt:
            raise PiiConfigError("pii: hashing needs a salt; set the Airflow Variable named by pii_salt_variable")
        return cls({name: mode for name, mode in modes.items() if mode != "keep"}, salt)

    def fingerprint(self) -> str:
        """A hash of the modes and the salt: under a new policy an unchanged directory must re-transform."""
        return hashlib.sha256(json.dumps([sorted(self.modes.items()), self.salt or ""]).encode()).hexdigest()

    def apply(self, users: pd.DataFrame) -> pd.DataFrame:
        """``users`` with hashed or dropped (NULL) PII columns; missing values stay missing."""
        if not self.modes:
            return users
        import pandas as pd  # noqa: PLC0415

        out = users.copy()
        for name, mode in self.modes.items():
            if mode == "drop":
                out[name] = pd.Series(pd.NA, index=out.index, dtype=out[name].dtype)
            else:
                out[name] = self._hash(out[name])
        return out

    def _hash(self, values: pd.Series) -> pd.Series:
        # hashlib has no vectorized form; only present values are hashed, each once.
        present = values.dropna()
        unique = present.unique()
        salt = (self.salt or "").encode()
        digests = {v: hashlib.sha256(salt + str(v).encode()).hexdigest() for v in unique}
        return values.map(digests, na_action="ignore").astype(values.dtype)


KEEP_ALL = PiiPolicy()
