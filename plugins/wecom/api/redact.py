"""Keep the access token and the secret out of every log line and message.

Both travel in query strings: urllib3 logs request lines (and retried URLs) with
them, and WeCom may echo them back in an ``errmsg``.
"""

from __future__ import annotations

import logging
import re

from wecom.api.tokens import Secret

SECRET_IN_QUERY = re.compile(r"(access_token|corpsecret)=[^&\s\"']*")


class _RedactQuery(logging.Filter):
    """Hide the token and the secret in urllib3's request lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if SECRET_IN_QUERY.search(message):
            record.msg = SECRET_IN_QUERY.sub(r"\1=<redacted>", message)
            record.args = None
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactQuery())


def redact(text: str, *secrets: Secret | None) -> str:
    """Foreign text (an errmsg) shown to operators, with ``secrets`` and any query-string secret hidden."""
    for secret in secrets:
        if secret is not None:
            text = text.replace(secret.reveal(), "<redacted>")
    return SECRET_IN_QUERY.sub(r"\1=<redacted>", text)
