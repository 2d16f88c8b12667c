"""Export file downloads, with single-range ``Range`` requests as WeCom's file URLs accept.

Downloads are counted as ``export_file`` in the call counters and take the same
latency and faults as API calls (``add_fault("export_file", http_status=502)``),
but no token and no frequency limit: the URL itself is the credential.
"""

from __future__ import annotations

import re

from fastapi import Request, Response

from wecom_simulator.api import ENDPOINTS, cut_short, delay_and_faults, fault_answer
from wecom_simulator.state import SimulatorState

DOWNLOAD_ENDPOINT = "export_file"
# Every name a fault can be injected for: the /cgi-bin/ endpoints and the export downloads.
FAULT_ENDPOINTS = frozenset(ENDPOINTS) | {DOWNLOAD_ENDPOINT}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """Inclusive (first, last) of a satisfiable single range; raises ValueError when unsatisfiable.

    None means "serve everything": no header, or a form we do not support (multiple ranges),
    which HTTP allows a server to ignore.
    """
    found = _RANGE.match(header.strip())
    if not found or not any(found.groups()):
        return None
    first_text, last_text = found.groups()
    if not first_text:
        suffix = int(last_text)
        if suffix == 0:
            raise ValueError("empty suffix range")
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text else size - 1
    if first >= size or first > last:
        raise ValueError("range starts beyond the end")
    return first, last


async def serve_export_file(request: Request, file_id: str) -> Response:
    state: SimulatorState = request.app.state.simulator
    client_ip = request.client.host if request.client else "127.0.0.1"
    state.record_call(DOWNLOAD_ENDPOINT)
    fault = await delay_and_faults(state, DOWNLOAD_ENDPOINT, {"file_id": file_id})
    injected = fault_answer(fault, client_ip, {})
    if injected is not None:
        return cut_short(fault, injected)
    export_file = state.exports.file(file_id, state.clock())
    if export_file is None:
        return Response("file not found or link expired", status_code=404, media_type="text/plain")
    data = export_file.path.read_bytes()
    if export_file.truncated or (fault is not None and fault.truncated):
        data = data[: len(data) // 2]
    headers = {"Accept-Ranges": "bytes"}
    try:
        wanted = _byte_range(request.headers.get("range", ""), len(data))
    except ValueError:
        headers["Content-Range"] = f"bytes */{len(data)}"
        return Response(status_code=416, headers=headers)
    if wanted is None:
        return Response(data, media_type="application/octet-stream", headers=headers)
    first, last = wanted
    headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
    return Response(data[first : last + 1], status_code=206, media_type="application/octet-stream", headers=headers)
