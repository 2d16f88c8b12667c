"""Asynchronous bulk export jobs: ``export/simple_user``, ``export/user``, ``export/department``, ``export/taguser``.

File format (our reference does not document the plaintext, so this is the
simulator's choice, and the extractor is built against it): each file is one
UTF-8 JSON document shaped like the matching list endpoint's answer,

* ``export/simple_user``: ``{"userlist": [<user/simplelist entry>, ...]}``
* ``export/user``: ``{"userlist": [<user/get fields>, ...]}`` (sensitive fields
  absent when the job was started with a ``new_app`` secret, see ``rights``)
* ``export/department``: ``{"department": [<department/list entry>, ...]}``
* ``export/taguser`` (body ``tagid``, 40068 when unknown): ``{"userlist": [{"userid": ..., "type": 1},
  {"department": <id>, "type": 2}, ...]}``, the tag's members and departments in one list, which is
  why WeCom counts ``block_size`` as "members plus departments" for this job

with at most ``block_size`` entries per file, encrypted as a whole with
``WeComAesCipher.encrypt_bytes`` (AES-256-CBC, key = base64(aeskey + "="),
IV = key[:16], PKCS#7 to 32 bytes; raw ciphertext, no base64, no framing).
``data_list`` gives each file's ``url``, ``size`` and the hex ``md5`` of the
bytes served (the ciphertext).

A job is queued (status 0) for ``export_queue_s``, runs (status 1) for at least
``export_run_s`` while its files are written to a temporary directory, then is
done (2) or failed (3). Injected export faults apply to the next jobs started:
``wrong_md5`` (data_list carries a wrong md5), ``truncated`` (downloads stop
halfway) and ``failed`` (the job ends in status 3).

Files live in one ``wecom-sim-export-*`` directory, made on the first export:
a file is deleted when its URL expires (noticed on the next export call or
download) and the directory when the simulator closes, so a long-running
simulator does not fill the disk and a stopped one leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from wecom.api.crypto import WeComAesCipher

EXPORT_KINDS = {"simple_user": "userlist", "user": "userlist", "department": "department", "taguser": "userlist"}
EXPORT_FAULTS = ("wrong_md5", "truncated", "failed")
BLOCK_SIZE_RANGE = (10_000, 1_000_000)

QUEUED, RUNNING, DONE, FAILED = 0, 1, 2, 3

# Produces the entries of an export in blocks of at most the given size.
BlockSource = Callable[[int], Iterator[list[dict[str, Any]]]]


@dataclass
class ExportFile:
    file_id: str
    path: Path
    size: int
    md5: str
    expires_at: float
    truncated: bool


@dataclass
class ExportJob:
    jobid: str
    kind: str
    running_at: float
    done_at: float
    fault: str | None
    files: list[ExportFile] = field(default_factory=list)
    finished: bool = False
    error: str | None = None

    def status(self, now: float) -> int:
        if now < self.running_at:
            return QUEUED
        if now < self.done_at or not self.finished:
            return RUNNING
        return FAILED if self.error is not None else DONE


class ExportJobs:
    """Jobs, their files on disk and the pending export faults; guarded by its own lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, ExportJob] = {}
        self._files: dict[str, ExportFile] = {}
        self._faults: deque[str] = deque()
        self._dir: Path | None = None
        self._closed = False

    def _directory(self) -> Path:
        """The files' directory, made on first use; OSError once closed, so a late job writes nothing."""
        with self._lock:
            if self._closed:
                raise OSError("the simulator is shutting down")
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="wecom-sim-export-"))
            return self._dir

    def _sweep(self, now: float) -> None:
        """Delete the files whose URL expired; the caller holds the lock."""
        for file_id, export_file in list(self._files.items()):
            if export_file.expires_at <= now:
                export_file.path.unlink(missing_ok=True)
                del self._files[file_id]

    def add_fault(self, kind: str, times: int = 1) -> None:
        if kind not in EXPORT_FAULTS:
            raise ValueError(f"export fault must be one of {EXPORT_FAULTS}, got {kind!r}")
        if times < 1:
            raise ValueError("times must be positive")
        with self._lock:
            self._faults.extend([kind] * times)

    def start(
        self,
        kind: str,
        cipher: WeComAesCipher,
        block_size: int,
        source: BlockSource,
        *,
        now: float,
        queue_s: float,
        run_s: float,
    ) -> str:
        """Queue a job and build its files in a background thread; answers the jobid at once."""
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            job = ExportJob(secrets.token_hex(16), kind, now + queue_s, now + queue_s + run_s, fault)
            self._jobs[job.jobid] = job
        threading.Thread(
            target=self._build, args=(job, cipher, block_size, source), name=f"export-{job.jobid[:8]}", daemon=True
        ).start()
        return job.jobid

    def _build(self, job: ExportJob, cipher: WeComAesCipher, block_size: int, source: BlockSource) -> None:
        key = EXPORT_KINDS[job.kind]
        files: list[ExportFile] = []
        try:
            directory = self._directory()
            for number, block in enumerate(source(block_size)):
                # orjson: the stdlib needs 2-3 s for a 100,000-member file, CPU a real WeCom
                # spends on its own servers but the simulator takes from the sync it serves.
                data = cipher.encrypt_bytes(orjson.dumps({key: block}))
                path = directory / f"{job.jobid}-{number}.bin"
                path.write_bytes(data)
                md5 = hashlib.md5(data).hexdigest()  # noqa: S324 (WeCom's export checksum is MD5)
                if job.fault == "wrong_md5":
                    md5 = hashlib.md5(md5.encode()).hexdigest()  # noqa: S324
                files.append(ExportFile(secrets.token_urlsafe(18), path, len(data), md5, 0.0, job.fault == "truncated"))
        except OSError as error:
            job.error = f"export failed: {error}"
        if job.fault == "failed":
            job.error = "export failed (injected)"
        with self._lock:
            job.files = files
            job.finished = True

    def result(self, jobid: str, now: float, base_url: str, url_ttl_s: float) -> dict[str, Any] | None:
        """get_result's payload (without errcode), or None for an unknown job.

        URLs are published, and start their ``url_ttl_s`` lifetime, when a result first reports them.
        """
        with self._lock:
            self._sweep(now)
            job = self._jobs.get(jobid)
            if job is None:
                return None
            status = job.status(now)
            if status != DONE:
                return {"status": status}
            for export_file in job.files:
                if not export_file.expires_at:
                    export_file.expires_at = now + url_ttl_s
                    self._files[export_file.file_id] = export_file
            data_list = [
                {"url": f"{base_url}/export_files/{f.file_id}", "size": f.size, "md5": f.md5} for f in job.files
            ]
            return {"status": status, "data_list": data_list}

    def file(self, file_id: str, now: float) -> ExportFile | None:
        """A downloadable file, or None when unknown or its URL expired."""
        with self._lock:
            self._sweep(now)
            return self._files.get(file_id)

    def close(self) -> None:
        """Delete every file; jobs still building stop writing."""
        with self._lock:
            self._closed = True
            directory, self._dir = self._dir, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
