"""The simulator's ASGI app: WeCom's API under ``/cgi-bin/``, export files, the admin API under ``/_sim/``."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from wecom_simulator import admin, admin_tags, robot
from wecom_simulator.api import serve_api
from wecom_simulator.downloads import serve_export_file
from wecom_simulator.state import SimulatorState


def create_app(state: SimulatorState) -> FastAPI:
    """An app bound to ``state``; tests keep the same ``state`` object to inspect and steer it."""
    app = FastAPI(title="WeCom simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.simulator = state
    robot.install(app)

    @app.api_route("/cgi-bin/{name:path}", methods=["GET", "POST"])
    async def wecom_api(request: Request, name: str) -> Response:
        return await serve_api(request, name)

    @app.get("/export_files/{file_id}")
    async def export_file(request: Request, file_id: str) -> Response:
        return await serve_export_file(request, file_id)

    app.include_router(admin.router)
    app.include_router(admin_tags.router)
    admin.install_error_handler(app)
    return app
