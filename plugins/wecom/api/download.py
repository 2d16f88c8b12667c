"""One streamed GET of an export file, resumable from an offset.

The file URL is itself the credential (no token needed), so it is never logged
and never put in an error; failures come back as values for the transport's
retry loop.
"""

from __future__ import annotations

from typing import BinaryIO

import requests

from wecom.api.rules import LINK_GONE, TRANSPORT, Failure

CHUNK = 1 << 20


def download_once(session: requests.Session, url: str, sink: BinaryIO, offset: int, *, timeout: float) -> int | Failure:
    """One GET from ``offset``; the new offset, or a failure (as a value, so no URL is chained)."""
    start = offset
    try:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
            if response.status_code == 416:
                return offset
            if response.status_code >= 500 or response.status_code == 429:
                return Failure(TRANSPORT, detail=f"HTTP {response.status_code}")
            if response.status_code not in (200, 206):
                return Failure(LINK_GONE, detail=f"HTTP {response.status_code}")
            if offset and response.status_code == 200:  # the server ignored the range: start over
                sink.seek(0)
                sink.truncate()
                start = offset = 0
            for chunk in response.iter_content(CHUNK):
                sink.write(chunk)
                offset += len(chunk)
    except requests.Timeout:
        return offset if offset > start else Failure(TRANSPORT, detail=f"no data within {timeout} s")
    except requests.RequestException as exc:
        return offset if offset > start else Failure(TRANSPORT, detail=f"network error ({type(exc).__name__})")
    return offset
