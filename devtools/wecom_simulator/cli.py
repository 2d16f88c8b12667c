"""A WeCom directory API on your machine: a generated company, served until Ctrl-C.

Point a wecom connection at the printed base URL (the startup text gives it
ready to paste), inject faults with --fault, choose WeCom's permission regime
with --regime, and have directory edits pushed as sealed change_contact
callbacks to a receiver with --callback-url. The first stdout line is the bare
base URL, for scripts (--port 0 picks a free port). Ctrl-C or SIGTERM stops
it, exit code 0, with its temporary export files removed.
"""

from __future__ import annotations

import argparse
import secrets
import string
import sys
import textwrap
import time
from typing import Any

from wecom_simulator.callbacks import CallbackVerificationError
from wecom_simulator.cli_text import ADMIN_ROUTES, EXAMPLES, startup_lines
from wecom_simulator.config import LAST_CURSOR_STYLES, SimulatorConfig
from wecom_simulator.downloads import FAULT_ENDPOINTS
from wecom_simulator.faults import FAULT_SYNTAX, Fault, parse_fault
from wecom_simulator.org import generate_org
from wecom_simulator.rights import (
    APP_KINDS,
    APP_REFUSABLE_APIS,
    CALLBACK_FORM_HELP,
    CALLBACK_FORMS,
    NEW_APP,
    REGIME_HELP,
    REGIMES,
    SECRET_KINDS,
)
from wecom_simulator.server import SimulatorServer
from wecom_simulator.state import SimulatorState
from wecom_simulator.stop_signal import StopSignal

DEFAULTS = SimulatorConfig()
ALPHANUMERIC = string.ascii_letters + string.digits
# Numeric SimulatorConfig settings: flag, metavar, type, help; the default is the setting's.
BEHAVIOUR_FLAGS: list[tuple[str, str, type[int] | type[float], str]] = [
    ("--latency-ms", "MS", float, "added to every call"),
    ("--rate-limit-per-minute", "N", int, "calls per API and window before 45009"),
    ("--rate-limit-window-s", "S", float, "the per-minute window"),
    ("--rate-limit-per-hour", "N", int, "calls per API and hour window before 45009"),
    ("--rate-limit-hour-window-s", "S", float, "the hour window"),
    ("--max-concurrency", "N", int, "calls in flight before 45033"),
    ("--cursor-ttl-s", "S", float, "life of a user/list_id cursor"),
    ("--export-queue-s", "S", float, "time an export job waits in status 0"),
    ("--export-run-s", "S", float, "least time an export job runs in status 1"),
]


def _id_set(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.split(",") if part.strip())


def _names(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def _app_secret(text: str) -> tuple[str, str]:
    """``SECRET`` (an app created after 2022-06-20) or ``SECRET=old_app``."""
    secret, _, kind = text.rpartition("=")
    return (secret, kind) if secret and kind in APP_KINDS else (text, NEW_APP)


def _visible_range(text: str) -> tuple[str, frozenset[int]]:
    """``SECRET=ID,ID``: the departments whose subtrees an app secret sees."""
    secret, _, ids = text.rpartition("=")
    if not secret or not ids:
        raise argparse.ArgumentTypeError(f"expected SECRET=ID,..., got {text!r}")
    try:
        return secret, _id_set(ids)
    except ValueError:
        raise argparse.ArgumentTypeError(f"department ids must be numbers, got {ids!r}") from None


def _fault(text: str) -> Fault:
    try:
        return parse_fault(text, FAULT_ENDPOINTS)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _described(title: str, entries: dict[str, str]) -> list[str]:
    return [title] + [
        textwrap.fill(text, width=96, initial_indent=f"  {name:10}", subsequent_indent=" " * 12)
        for name, text in entries.items()
    ]


def _epilog() -> str:
    lines = _described("permission regimes (--regime: the secret clients use, every caller IP):", REGIME_HELP)
    lines += _described("callback forms (--callback-form):", CALLBACK_FORM_HELP)
    lines += ["finer settings (--secret-kind, --app-secret, --app-forbidden-apis, --new-ip) win over --regime.", ""]
    return "\n".join([*lines, f"--fault syntax: {FAULT_SYNTAX}", "", ADMIN_ROUTES, "", EXAMPLES])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wecom_simulator",
        usage="%(prog)s [options]   (all optional; --help lists them with their defaults)",
        description=__doc__,
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group = parser.add_argument_group("company (generated, the same for the same --seed)").add_argument
    group("--members", metavar="N", type=int, default=1000, help="members (default %(default)s)")
    group("--departments", metavar="N", type=int, default=100, help="departments (default %(default)s)")
    group("--seed", metavar="N", type=int, default=1, help="random seed of the company (default %(default)s)")
    group("--max-depth", metavar="N", type=int, default=15, help="deepest department level (default %(default)s)")
    group("--tags", metavar="N", type=int, default=None, help="tags (default one per 8 departments, at most 12)")
    group(
        "--out-of-scope-departments",
        type=_id_set,
        default=None,
        metavar="ID,...",
        help="departments outside the app's visible scope: reading them answers 60011 (default none)",
    )

    group = parser.add_argument_group("credentials").add_argument
    group("--corp-id", metavar="ID", default=DEFAULTS.corp_id, help="the corp id clients send (default %(default)s)")
    group("--secret", metavar="SECRET", default=DEFAULTS.secret, help="the secret clients send (default %(default)s)")
    group("--secret-kind", choices=SECRET_KINDS, default=None, help="what --secret belongs to (default contact_sync)")
    group(
        "--app-secret",
        dest="app_secrets",
        type=_app_secret,
        action="append",
        default=None,
        metavar="SECRET[=KIND]",
        help="another secret gettoken accepts, an app's: SECRET (new_app) or SECRET=old_app; repeatable",
    )
    group("--token-ttl", metavar="S", type=float, default=DEFAULTS.token_ttl, help="token life (default %(default)s)")

    group = parser.add_argument_group("permissions").add_argument
    group("--regime", choices=tuple(REGIMES), default=None, help="WeCom's rights, see below (default full)")
    group("--callback-form", choices=CALLBACK_FORMS, default=None, help="event form, see below (default full)")
    group(
        "--app-forbidden-apis",
        type=_names,
        default=None,
        metavar="API,...",
        help=f"APIs app secrets get 48002 for, from {','.join(sorted(APP_REFUSABLE_APIS))} (default user/list_id)",
    )
    group(
        "--new-ips-read-tags",
        action="store_const",
        const=True,
        default=None,
        help="let --new-ip callers still call tag/list, tag/get and export/taguser (WeCom does not say; default 48009)",
    )
    group(
        "--new-ip",
        dest="new_ips",
        action="append",
        default=None,
        metavar="IP",
        help="a caller IP added to the contact-sync assistant after 2022-08-15 ('*': every caller); repeatable",
    )
    group(
        "--visible-range",
        dest="visible_ranges",
        type=_visible_range,
        action="append",
        default=None,
        metavar="SECRET=ID,...",
        help="an app secret's visible range: it sees only these departments' subtrees (60011 elsewhere); repeatable",
    )

    group = parser.add_argument_group("behaviour").add_argument
    for flag, metavar, kind, text in BEHAVIOUR_FLAGS:
        default = getattr(DEFAULTS, flag[2:].replace("-", "_"))
        shown = "unlimited" if default is None else default
        group(flag, metavar=metavar, type=kind, default=default, help=f"{text} (default {shown})")
    group(
        "--list-id-last-cursor",
        choices=LAST_CURSOR_STYLES,
        default=DEFAULTS.list_id_last_cursor,
        help="how user/list_id's last page ends (default %(default)s)",
    )

    group = parser.add_argument_group("faults").add_argument
    group(
        "--fault",
        dest="faults",
        type=_fault,
        action="append",
        default=[],
        metavar="SPEC",
        help="e.g. user/get:errcode=48009:times=3; repeatable, applied in order (syntax below)",
    )

    group = parser.add_argument_group("callbacks (off unless --callback-url)").add_argument
    group("--callback-url", metavar="URL", help="where to POST change_contact events for every /_sim/ edit")
    group(
        "--callback-token",
        metavar="TOKEN",
        help="the callback Token, 1-32 letters and digits (default: generated, printed)",
    )
    group(
        "--callback-aes-key",
        metavar="KEY",
        help="the EncodingAESKey, 43 letters and digits (default: generated, printed)",
    )
    group(
        "--callback-verify",
        action="store_true",
        help="run WeCom's URL check (GET with echostr) at start and stop if it fails; the receiver must be up",
    )

    group = parser.add_argument_group("server").add_argument
    group("--host", metavar="HOST", default="127.0.0.1", help="address to listen on (default %(default)s)")
    group("--port", metavar="N", type=int, default=8081, help="port; 0 picks a free one (default %(default)s)")
    return parser


def config_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The flags that are ``SimulatorConfig`` settings; those left unset are left out, so ``--regime`` fills them."""
    names = [*SimulatorConfig.setting_names(), "regime"]
    settings = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    for name in ("app_secrets", "visible_ranges"):
        if name in settings:
            settings[name] = dict(settings[name])
    return settings


def _callback_target(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any] | None:
    """``configure_callbacks`` arguments, the token and key generated when not given; None without a URL."""
    if args.callback_url is None:
        if args.callback_token or args.callback_aes_key or args.callback_verify:
            parser.error("--callback-token, --callback-aes-key and --callback-verify need --callback-url")
        return None
    token = args.callback_token or "".join(secrets.choice(ALPHANUMERIC) for _ in range(32))
    aes_key = args.callback_aes_key or "".join(secrets.choice(ALPHANUMERIC) for _ in range(43))
    return {"url": args.callback_url, "token": token, "encoding_aes_key": aes_key, "verify": args.callback_verify}


def serve(parser: argparse.ArgumentParser, args: argparse.Namespace, stop: StopSignal) -> None:
    """Build the company and serve it until ``stop``; refusals end with one line and exit code 2.

    A stop requested during the start ends it after the step under way (the company's
    generation is abandoned at once), before anything is printed or served.
    """
    settings = config_settings(args)
    try:
        SimulatorConfig.create(**settings)
    except ValueError as error:
        parser.error(str(error))
    callback = _callback_target(parser, args)
    started = time.perf_counter()
    size = {"members": args.members, "departments": args.departments, "max_depth": args.max_depth, "tags": args.tags}
    org = stop.unless_stopped(lambda: generate_org(seed=args.seed, **size))
    if org is None:
        return
    state = SimulatorState(org, **settings)
    try:
        for fault in args.faults:
            state.inject(fault)
        if callback is not None:
            try:
                state.configure_callbacks(**callback)
            except (ValueError, CallbackVerificationError) as error:
                parser.exit(2, f"wecom simulator: callbacks to {args.callback_url}: {error}\n")
        try:
            server = SimulatorServer(state, args.host, args.port)
        except OSError as error:
            parser.exit(2, f"wecom simulator: cannot listen on {args.host}:{args.port}: {error.strerror}\n")
        with server:
            if not stop.requested:
                print("\n".join(startup_lines(server.base_url, state, time.perf_counter() - started)), flush=True)
                stop.wait()
    finally:
        state.close()


def main(stop: StopSignal, argv: list[str] | None = None) -> None:
    """The command line; ``stop`` is installed before this module's imports (``__main__``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    serve(parser, args, stop)
    print("wecom simulator: stopped", file=sys.stderr, flush=True)
