"""``python -m wecom.simulator``: serve a generated directory until interrupted.

Prints the base URL as its first stdout line (flushed), so a benchmark can
start it as a subprocess with ``--port 0`` and read where it listens.
"""

from __future__ import annotations

import argparse
import sys
import time

from wecom.simulator.org import generate_org
from wecom.simulator.server import SimulatorServer
from wecom.simulator.state import LAST_CURSOR_STYLES, PERMISSION_MODES, SimulatorConfig, SimulatorState

DEFAULTS = SimulatorConfig()


def _id_set(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.split(",") if part.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m wecom.simulator", description=__doc__)
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=8081, help="0 picks a free port")
    add("--members", type=int, default=1000)
    add("--departments", type=int, default=100)
    add("--seed", type=int, default=1)
    add("--max-depth", type=int, default=15)
    add("--corp-id", default=DEFAULTS.corp_id)
    add("--secret", default=DEFAULTS.secret)
    add("--token-ttl", type=float, default=DEFAULTS.token_ttl, help="seconds a token lives")
    add("--latency-ms", type=float, default=DEFAULTS.latency_ms)
    add("--rate-limit-per-minute", type=int, default=None, help="per API; default unlimited")
    add("--rate-limit-window-s", type=float, default=DEFAULTS.rate_limit_window_s)
    add("--rate-limit-per-hour", type=int, default=None, help="per API; default unlimited")
    add("--rate-limit-hour-window-s", type=float, default=DEFAULTS.rate_limit_hour_window_s)
    add("--max-concurrency", type=int, default=None, help="answer 45033 above this many calls in flight")
    add("--permission-mode", choices=PERMISSION_MODES, default=DEFAULTS.permission_mode)
    add("--out-of-scope-departments", type=_id_set, default=frozenset(), help="e.g. 7,9")
    add("--list-id-last-cursor", choices=LAST_CURSOR_STYLES, default=DEFAULTS.list_id_last_cursor)
    add("--cursor-ttl-s", type=float, default=DEFAULTS.cursor_ttl_s)
    add("--export-queue-s", type=float, default=DEFAULTS.export_queue_s)
    add("--export-run-s", type=float, default=DEFAULTS.export_run_s)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = vars(build_parser().parse_args(argv))
    host, port = args.pop("host"), args.pop("port")
    started = time.perf_counter()
    org = generate_org(
        seed=args.pop("seed"),
        members=args.pop("members"),
        departments=args.pop("departments"),
        max_depth=args.pop("max_depth"),
    )
    server = SimulatorServer(SimulatorState(org, **args), host, port)
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
