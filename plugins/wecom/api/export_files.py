"""WeCom's asynchronous export jobs end to end: start, poll, download in parallel, verify, decrypt, parse.

A whole directory costs a handful of API calls this way. Each job's
``data_list`` names files (``url``, ``size``, ``md5``); they are downloaded in
parallel to a local spool directory (bounded memory whatever the company's
size), checked against their size and md5 before anything is read, then
decrypted with the project's ``WeComAesCipher`` and parsed one record at a
time, so neither a file nor its records are ever held whole.

The plaintext of an export file is one JSON document, ``{"userlist": [...]}``
or ``{"department": [...]}``, shaped like the matching list endpoint's answer
(WeCom does not document it further; the simulator produces exactly this). A
tag's export (``taguser``) lists its members and departments in one ``userlist``,
``{"userid", "type": 1}`` and ``{"department", "type": 2}`` (``wecom.api.tag_walk``
reads both forms).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from wecom.api.client import WeComClient
from wecom.api.crypto import WeComAesCipher
from wecom.errors import CallbackCryptoError, WeComExportError

log = logging.getLogger(__name__)

RECORDS_KEY = {"user": "userlist", "department": "department", "taguser": "userlist"}
DONE, FAILED = 2, 3
READ_CHUNK = 1 << 20
_HEAD = re.compile(r'\s*\{\s*"([^"\\]+)"\s*:\s*\[')
_SPACE = " \t\r\n"
_DECODER = json.JSONDecoder()


class ExportJob:
    """One started job: its kind and id, and where its files are once it is done."""

    def __init__(self, client: WeComClient, kind: str, *, block_size: int, tagid: int | None = None) -> None:
        self.client = client
        self.kind = kind
        self.jobid = client.export_start(kind, block_size=block_size, tagid=tagid)
        self.files: list[dict[str, Any]] = []
        log.info("started export/%s job %s", kind, self.jobid)

    def __repr__(self) -> str:
        return f"ExportJob(export/{self.kind}, {self.jobid})"

    def fail(self, problem: str) -> WeComExportError:
        return WeComExportError(
            f"export job {self.jobid} (export/{self.kind}) {problem}; the extract stops, nothing is loaded",
            endpoint=f"export/{self.kind}",
        )

    def poll(self) -> bool:
        """Ask once whether the job is done; raises when it failed."""
        result = self.client.export_result(self.jobid)
        if result["status"] == FAILED:
            raise self.fail("ended in status 3 (failed on WeCom's side)")
        if result["status"] == DONE:
            self.files = result["data_list"]
            log.info("export/%s job %s is done: %d file(s)", self.kind, self.jobid, len(self.files))
            return True
        return False


def wait_for(jobs: list[ExportJob], *, timeout_s: float, first_poll_s: float = 0.2, max_poll_s: float = 1.0) -> None:
    """Poll every job until all are done, backing off from ``first_poll_s`` to ``max_poll_s``.

    At most one get_result a second per job: nothing against 10,000 calls a minute, and a
    finished export waits at most a second for us to notice.
    """
    deadline = time.monotonic() + timeout_s
    pending = list(jobs)
    interval = first_poll_s
    while True:
        pending = [job for job in pending if not job.poll()]
        if not pending:
            return
        if time.monotonic() + interval > deadline:
            raise pending[0].fail(f"was not done after {timeout_s:.0f} s")
        time.sleep(interval)
        interval = min(max_poll_s, interval * 1.5)


def _fetch(job: ExportJob, number: int, spool: Path) -> Path:
    """Download file ``number`` of ``job`` to ``spool`` and check its size and md5; returns its path."""
    entry = job.files[number]
    path = spool / f"{job.jobid}-{number}.bin"
    with path.open("w+b") as sink:
        received = job.client.download(entry["url"], sink, size=entry["size"])
        if received != entry["size"]:
            raise job.fail(
                f"file {number + 1} of {len(job.files)} arrived truncated: {received} of {entry['size']} bytes"
            )
        sink.seek(0)
        digest = hashlib.md5(usedforsecurity=False)
        while chunk := sink.read(READ_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != str(entry["md5"]).lower():
        raise job.fail(
            f"file {number + 1} of {len(job.files)} does not match its md5 "
            f"({digest.hexdigest()}, data_list says {entry['md5']})"
        )
    return path


def _read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            yield chunk


def iter_json_array(pieces: Iterable[bytes], key: str) -> Iterator[dict[str, Any]]:
    """The objects of ``{"<key>": [ ... ]}`` one at a time, from the document's bytes in pieces.

    Each element is decoded with ``JSONDecoder.raw_decode`` as soon as the
    buffer holds all of it, so memory is one piece plus one element.
    """
    utf8 = codecs.getincrementaldecoder("utf-8")()
    source = iter(pieces)
    buffer, pos, more = "", 0, True

    def fill() -> None:
        nonlocal buffer, pos, more
        piece = next(source, None)
        if piece is None:
            buffer, pos, more = buffer[pos:] + utf8.decode(b"", final=True), 0, False
        else:
            buffer, pos = buffer[pos:] + utf8.decode(piece), 0

    while not (head := _HEAD.match(buffer, pos)):
        if not more or len(buffer) - pos > 4096:
            raise ValueError(f'the document does not start with {{"{key}": [')
        fill()
    if head.group(1) != key:
        raise ValueError(f"the document holds {head.group(1)!r}, not {key!r}")
    pos = head.end()
    expect_comma = False
    while True:
        while pos < len(buffer) and buffer[pos] in _SPACE:
            pos += 1
        if pos == len(buffer):
            if not more:
                raise ValueError("the document ends inside the list")
            fill()
            continue
        if buffer[pos] == "]":
            return
        if expect_comma:
            if buffer[pos] != ",":
                raise ValueError(f"expected ',' or ']' in the list, found {buffer[pos]!r}")
            pos += 1
            expect_comma = False
            continue
        try:
            record, end = _DECODER.raw_decode(buffer, pos)
        except json.JSONDecodeError:
            if not more:
                raise ValueError("an element of the list is not valid JSON") from None
            fill()
            continue
        if end == len(buffer) and more:  # a number or literal may continue in the next piece
            fill()
            continue
        if not isinstance(record, dict):
            raise ValueError("an element of the list is not an object")
        yield record
        pos, expect_comma = end, True


def records(job: ExportJob, path: Path, number: int, cipher: WeComAesCipher) -> Iterator[dict[str, Any]]:
    """The records of one verified file, decrypted and parsed as they stream from disk."""
    plain = cipher.decrypt_stream(_read_chunks(path))
    try:
        yield from iter_json_array(plain, RECORDS_KEY[job.kind])
        for _ in plain:  # the rest of the document; decrypting it to the end checks the padding
            pass
    except (ValueError, CallbackCryptoError) as error:
        raise job.fail(
            f"file {number + 1} of {len(job.files)} does not decrypt to the expected JSON ({error}); "
            "check that the connection's callback_aes_secret is the key the job was started with"
        ) from None


def iter_export(job: ExportJob, *, max_workers: int, spool: Path) -> Iterator[dict[str, Any]]:
    """Every record of a finished job: files download in parallel, records come in ``data_list`` order.

    A file is parsed while the next ones download and deleted once read; the
    spool is local disk (at worst the whole export), never memory.
    """
    cipher = job.client.export_cipher()
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(job.files))), thread_name_prefix="export") as pool:
        futures: list[Future[Path]] = []
        try:
            futures = [pool.submit(_fetch, job, number, spool) for number in range(len(job.files))]
            for number, future in enumerate(futures):
                path = future.result()
                yield from records(job, path, number, cipher)
                path.unlink()
        finally:
            for future in futures:
                future.cancel()
