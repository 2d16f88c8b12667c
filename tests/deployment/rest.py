"""The deployed Airflow's public REST API (/api/v2), as a client outside the cluster sees it.

The token comes from SimpleAuthManager's own login endpoint (``POST /auth/token``) with the
password `make airflow` prints, not from a key shared with the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.waiting import wait_for

FINISHED = {"success", "failed"}


@dataclass
class Rest:
    base_url: str
    token: str

    @classmethod
    def login(cls, base_url: str, username: str, password: str) -> Rest:
        answer = httpx.post(f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=30)
        assert answer.status_code == 201, answer.text
        return cls(base_url, answer.json()["access_token"])

    def call(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} | (headers or {})
        answer = httpx.request(method, f"{self.base_url}/api/v2{path}", headers=headers, timeout=60, **kwargs)
        assert answer.is_success, f"{method} {path}: {answer.status_code} {answer.text[:500]}"
        return answer.json()

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def runs(self, dag_id: str, run_type: str | None = None) -> list[dict[str, Any]]:
        params = {"run_type": run_type} if run_type else {}
        return self.call("GET", f"/dags/{dag_id}/dagRuns", params=params)["dag_runs"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        tis = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in tis}

    def finished_run(self, dag_id: str, run_id: str, timeout_s: float) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            run = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            return run if run["state"] in FINISHED else None

        return wait_for(finished, timeout_s, f"{dag_id} run {run_id} to finish", interval_s=1)

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """Every try's log of one task, as the UI's log view reads it."""
        ti = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        parts = []
        for try_number in range(1, ti["try_number"] + 1):
            log = self.call(
                "GET",
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                params={"full_content": True},
                headers={"Accept": "application/json"},
            )
            content = log["content"]
            parts.append(content if isinstance(content, str) else "\n".join(str(line) for line in content))
        return "\n".join(parts)
