"""``python -m wecom.simulator``: serve a generated directory until interrupted.

Prints the base URL as its first stdout line (flushed), so a benchmark can
start it as a subprocess with ``--port 0`` and read where it listens. Rights
can be changed while it runs with ``POST /_sim/regime``.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from typing import Any

from wecom.simulator.config import LAST_CURSOR_STYLES, SimulatorConfig
from wecom.simulator.org import generate_org
from wecom.simulator.rights import (
    APP_KINDS,
    APP_REFUSABLE_APIS,
    CALLBACK_FORM_HELP,
    CALLBACK_FORMS,
    NEW_APP,
    REGIME_HELP,
    REGIMES,
    SECRET_KINDS,
)
from wecom.simulator.server import SimulatorServer
from wecom.simulator.state import SimulatorState

DEFAULTS = SimulatorConfig()


def _id_set(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.split(",") if part.strip())


def _names(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def _app_secret(text: str) -> tuple[str, str]:
    """``SECRET`` (an app created after 2022-06-20) or ``SECRET=old_app``."""
    secret, _, kind = text.rpartition("=")
    return (secret, kind) if secret and kind in APP_KINDS else (text, NEW_APP)


def _described(title: str, entries: dict[str, str]) -> list[str]:
    return [title] + [
        textwrap.fill(text, width=96, initial_indent=f"  {name:10}", subsequent_indent=" " * 12)
        for name, text in entries.items()
    ]


def _rights_epilog() -> str:
    lines = _described("permission regimes (--regime: the secret clients use, every caller IP):", REGIME_HELP)
    lines += _described("callback forms (--callback-form):", CALLBACK_FORM_HELP)
    lines += ["finer settings (--secret-kind, --app-secret, --app-forbidden-apis, --new-ip) win over --regime."]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wecom.simulator",
        description=__doc__,
        epilog=_rights_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=8081, help="0 picks a free port")
    add("--members", type=int, default=1000)
    add("--departments", type=int, default=100)
    add("--seed", type=int, default=1)
    add("--max-depth", type=int, default=15)
    add("--corp-id", default=DEFAULTS.corp_id)
    add("--secret", default=DEFAULTS.secret, help="the secret clients use; its kind is --secret-kind")
    add("--token-ttl", type=float, default=DEFAULTS.token_ttl, help="seconds a token lives")
    add("--latency-ms", type=float, default=DEFAULTS.latency_ms)
    add("--rate-limit-per-minute", type=int, default=None, help="per API; default unlimited")
    add("--rate-limit-window-s", type=float, default=DEFAULTS.rate_limit_window_s)
    add("--rate-limit-per-hour", type=int, default=None, help="per API; default unlimited")
    add("--rate-limit-hour-window-s", type=float, default=DEFAULTS.rate_limit_hour_window_s)
    add("--max-concurrency", type=int, default=None, help="answer 45033 above this many calls in flight")
    add("--regime", choices=tuple(REGIMES), default=None, help="see the regimes below; default full")
    add("--callback-form", choices=CALLBACK_FORMS, default=None, help="see the forms below; default full")
    add("--secret-kind", choices=SECRET_KINDS, default=None, help="what --secret belongs to; default contact_sync")
    add(
        "--app-secret",
        dest="app_secrets",
        type=_app_secret,
        action="append",
        metavar="SECRET[=KIND]",
        default=None,
        help="SECRET or SECRET=old_app: another secret gettoken accepts, an app's (default new_app); repeatable",
    )
    add(
        "--app-forbidden-apis",
        type=_names,
        default=None,
        metavar="API,...",
        help=f"APIs app secrets get 48002 for, from {','.join(sorted(APP_REFUSABLE_APIS))}; default user/list_id",
    )
    add(
        "--new-ip",
        dest="new_ips",
        action="append",
        default=None,
        metavar="IP",
        help="a caller IP added to the contact-sync assistant after 2022-08-15 ('*': every caller); repeatable",
    )
    add("--out-of-scope-departments", type=_id_set, default=frozenset(), help="e.g. 7,9")
    add("--list-id-last-cursor", choices=LAST_CURSOR_STYLES, default=DEFAULTS.list_id_last_cursor)
    add("--cursor-ttl-s", type=float, default=DEFAULTS.cursor_ttl_s)
    add("--export-queue-s", type=float, default=DEFAULTS.export_queue_s)
    add("--export-run-s", type=float, default=DEFAULTS.export_run_s)
    return parser


def parse_settings(argv: list[str] | None = None) -> dict[str, Any]:
    """Every flag given or defaulted, as ``running_simulator``-style settings; flags left unset are left out.

    Leaving them out lets ``--regime`` fill ``secret_kind`` and ``new_ips`` unless those flags name them.
    """
    args = vars(build_parser().parse_args(argv))
    if args["app_secrets"] is not None:
        args["app_secrets"] = dict(args["app_secrets"])
    return {name: value for name, value in args.items() if value is not None}


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(argv)
    host, port = settings.pop("host"), settings.pop("port")
    started = time.perf_counter()
    org = generate_org(
        seed=settings.pop("seed"),
        members=settings.pop("members"),
        departments=settings.pop("departments"),
        max_depth=settings.pop("max_depth"),
    )
    server = SimulatorServer(SimulatorState(org, **settings), host, port)
    print(server.base_url, flush=True)
    print(
        f"serving {len(org.users)} members in {len(org.departments)} departments "
        f"(generated in {time.perf_counter() - started:.1f}s)",
        file=sys.stderr,
        flush=True,
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
