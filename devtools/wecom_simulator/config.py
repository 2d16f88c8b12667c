"""The simulator's behaviour knobs, validated: one frozen ``SimulatorConfig`` replaced on every change.

Frozen so a handler reads one consistent set of settings under the state lock
while a test or the admin API swaps in a new one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from wecom_simulator.rights import (
    ANY_IP,
    APP_KINDS,
    CONTACT_SYNC,
    DEFAULT_APP_FORBIDDEN_APIS,
    check_rights_settings,
    regime_name,
    regime_settings,
)

LAST_CURSOR_STYLES = ("empty", "missing")


def _name_set(value: Any, what: str) -> frozenset[str]:
    """A set of names from any iterable but a lone string, which would silently become its characters."""
    if isinstance(value, str):
        raise ValueError(f"{what} must be a list of strings, got the string {value!r}")
    return frozenset(str(v) for v in value)


def _id_set(value: Any, what: str) -> frozenset[int]:
    """Positive department ids from any iterable of integers."""
    if isinstance(value, str) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ValueError(f"{what} must map secrets to lists of department ids, got {value!r}")
    return frozenset(value)


@dataclass(frozen=True)
class SimulatorConfig:
    """Behaviour knobs; every one is settable from Python, the CLI and ``PATCH /_sim/config``.

    Rights (see ``rights``): ``secret`` is the secret clients use and
    ``secret_kind`` what it belongs to (``contact_sync``, ``new_app``,
    ``old_app``); ``app_secrets`` maps further secrets to ``new_app`` or
    ``old_app``; ``app_forbidden_apis`` are refused to app secrets (48002);
    ``new_ips`` are caller IPs added to the contact-sync assistant after
    2022-08-15 (``*``: every caller); ``new_ips_read_tags`` lets those IPs
    still call the tag APIs (WeCom does not say; default no); ``callback_form``
    is ``full`` or ``ids_only``. ``regime`` (``create``/``updated`` only) sets ``secret_kind``
    and ``new_ips`` at once; settings passed with it win.
    ``visible_ranges``: an app secret's visible range, as WeCom documents it:
    secret -> department ids whose subtrees the app sees. Department lists show
    only those departments (the range's tops keep their real ``parentid``),
    anything outside answers 60011, and member answers list only the visible
    departments (``order``, ``is_leader_in_dept`` aligned; ``main_department``
    absent when it is not visible). A secret without one sees the whole company;
    the contact-sync secret always does.
    ``out_of_scope_departments``: a cruder knob, the same for every secret:
    departments that still appear in the department lists, but reading them or
    their members answers 60011 and list_id leaves their rows out.
    ``list_id_last_cursor``: how the last list_id page ends, ``next_cursor: ""``
    (``empty``) or no ``next_cursor`` at all (``missing``); WeCom does both.
    """

    corp_id: str = "wwtestcorp"
    secret: str = "s3cret-value"  # noqa: S105 (the simulator's published test secret)
    token_ttl: float = 7200.0
    latency_ms: float = 0.0
    rate_limit_per_minute: int | None = None
    rate_limit_window_s: float = 60.0
    rate_limit_per_hour: int | None = None
    rate_limit_hour_window_s: float = 3600.0
    max_concurrency: int | None = None
    secret_kind: str = CONTACT_SYNC
    app_secrets: dict[str, str] = field(default_factory=dict)
    app_forbidden_apis: frozenset[str] = DEFAULT_APP_FORBIDDEN_APIS
    new_ips: frozenset[str] = field(default_factory=frozenset)
    new_ips_read_tags: bool = False
    callback_form: str = "full"
    out_of_scope_departments: frozenset[int] = field(default_factory=frozenset)
    visible_ranges: dict[str, frozenset[int]] = field(default_factory=dict)
    list_id_last_cursor: str = "empty"
    cursor_ttl_s: float = 600.0
    export_queue_s: float = 0.1
    export_run_s: float = 0.2
    export_url_ttl_s: float = 7200.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_of_scope_departments", frozenset(int(d) for d in self.out_of_scope_departments))
        object.__setattr__(self, "app_secrets", {str(k): v for k, v in dict(self.app_secrets).items()})
        object.__setattr__(self, "app_forbidden_apis", _name_set(self.app_forbidden_apis, "app_forbidden_apis"))
        object.__setattr__(self, "new_ips", _name_set(self.new_ips, "new_ips"))
        object.__setattr__(
            self, "visible_ranges", {str(k): _id_set(v, "visible_ranges") for k, v in dict(self.visible_ranges).items()}
        )
        check_rights_settings(
            self.secret, self.secret_kind, self.app_secrets, self.app_forbidden_apis, self.callback_form
        )
        for secret in self.visible_ranges:
            if self.secret_kind_of(secret) not in APP_KINDS:
                raise ValueError("visible_ranges may only name app secrets (the contact-sync secret sees everything)")
        if self.list_id_last_cursor not in LAST_CURSOR_STYLES:
            raise ValueError(f"list_id_last_cursor must be one of {LAST_CURSOR_STYLES}")
        for name in ("rate_limit_per_minute", "rate_limit_per_hour", "max_concurrency"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be positive or None, got {value}")
        for name in ("token_ttl", "rate_limit_window_s", "rate_limit_hour_window_s", "cursor_ttl_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.latency_ms < 0 or self.export_queue_s < 0 or self.export_run_s < 0:
            raise ValueError("latency and export durations must not be negative")

    @classmethod
    def create(cls, **settings: Any) -> SimulatorConfig:
        return cls().updated(**settings)

    def updated(self, regime: str | None = None, **settings: Any) -> SimulatorConfig:
        """A copy with ``settings`` changed; unknown names raise TypeError, impossible values ValueError."""
        if regime is not None:
            settings = {**regime_settings(regime), **settings}
        return replace(self, **settings)

    @property
    def regime(self) -> str:
        return regime_name(self.secret_kind, self.new_ips)

    def secret_kind_of(self, secret: str) -> str | None:
        """What ``secret`` belongs to; None for a secret WeCom does not know (40001)."""
        if secret == self.secret:
            return self.secret_kind
        return self.app_secrets.get(secret)

    def is_new_ip(self, client_ip: str) -> bool:
        return ANY_IP in self.new_ips or client_ip in self.new_ips

    def rate_limits(self) -> list[tuple[int, float]]:
        pairs = (
            (self.rate_limit_per_minute, self.rate_limit_window_s),
            (self.rate_limit_per_hour, self.rate_limit_hour_window_s),
        )
        return [(limit, window) for limit, window in pairs if limit is not None]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out_of_scope_departments"] = sorted(self.out_of_scope_departments)
        data["app_forbidden_apis"] = sorted(self.app_forbidden_apis)
        data["new_ips"] = sorted(self.new_ips)
        data["visible_ranges"] = {secret: sorted(ids) for secret, ids in self.visible_ranges.items()}
        data["regime"] = self.regime
        return data

    @classmethod
    def setting_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
