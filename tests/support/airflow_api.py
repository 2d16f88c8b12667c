"""The Airflow API server's own app, in process, with a real login token.

``create_app()`` is what ``airflow api-server`` serves: core API, UI API,
auth manager and every plugin's FastAPI apps, mounted as in production.
Tokens are issued by the configured auth manager (SimpleAuthManager here),
so authentication runs exactly as for a browser carrying the ``_token`` cookie.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi.testclient import TestClient


@dataclass
class AirflowApi:
    client: TestClient
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def airflow_api(role: str = "admin") -> Iterator[AirflowApi]:
    from airflow.api_fastapi.app import create_app, get_auth_manager, purge_cached_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    purge_cached_app()
    app = create_app()
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="tester", role=role))
    with TestClient(app) as client:
        yield AirflowApi(client, token)
    purge_cached_app()
