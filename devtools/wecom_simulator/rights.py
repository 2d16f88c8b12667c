"""WeCom's permission regimes: who may call what, and which fields they receive.

Since 2022 WeCom grants rights by when things were set up, and the rights of a
running deployment change when its secret or egress IP does. Three things
decide an answer, as on WeCom:

* the kind of secret a token was issued for: ``contact_sync`` (the contact-sync
  assistant's secret: every field), ``new_app`` (an app created after
  2022-06-20: avatar, gender, mobile, email, biz_mail, qr_code and address are
  absent, the keys themselves, not emptied) or ``old_app`` (an app created
  before: every field). An app secret is refused (48002) the contact-sync-only
  APIs named in ``app_forbidden_apis``; by default only ``user/list_id``, which
  WeCom documents for the contact-sync secret alone (the export jobs are
  documented as "only the members the caller may see", so apps may run them);
* the caller IP, for the contact-sync secret only: an IP added to its trusted
  IPs after 2022-08-15 may call the id lists (``department/simplelist``,
  ``user/list_id``) and nothing else that reads the directory (48009). Whether
  it may still read tags WeCom does not say: ``new_ips_read_tags`` chooses
  (default no: ``tag/list``, ``tag/get`` and ``export/taguser`` answer 48009);
* the callback URL's form: one set after 2022-08-15 receives ``ids_only``
  events (see ``events``).

A regime names a common combination of the first two, for the secret
clients use (``SimulatorConfig.secret``) and every caller IP.
"""

from __future__ import annotations

from typing import Any

from wecom_simulator import errcodes as ec

CONTACT_SYNC = "contact_sync"
NEW_APP = "new_app"
OLD_APP = "old_app"
SECRET_KINDS = (CONTACT_SYNC, NEW_APP, OLD_APP)
APP_KINDS = (NEW_APP, OLD_APP)

ANY_IP = "*"
# What a contact-sync IP added after 2022-08-15 may still call (gettoken needs no token and is never refused).
ID_LIST_APIS = frozenset({"department/simplelist", "user/list_id", "export/get_result"})
# The contact-sync APIs an app secret may be refused with 48002 (``app_forbidden_apis`` picks among them).
TAG_APIS = frozenset({"tag/list", "tag/get", "export/taguser"})
APP_REFUSABLE_APIS = frozenset({"user/list_id", "export/simple_user", "export/user", "export/department"}) | TAG_APIS
DEFAULT_APP_FORBIDDEN_APIS = frozenset({"user/list_id"})

CALLBACK_FORMS = ("full", "ids_only")

REGIMES: dict[str, dict[str, Any]] = {
    "full": {"secret_kind": CONTACT_SYNC, "new_ips": frozenset()},
    "withheld": {"secret_kind": NEW_APP, "new_ips": frozenset()},
    "ids_only": {"secret_kind": CONTACT_SYNC, "new_ips": frozenset({ANY_IP})},
}
REGIME_HELP = {
    "full": "the contact-sync assistant's secret from an IP trusted before 2022-08-15: every API, every field",
    "withheld": (
        "the secret is an app's created after 2022-06-20: avatar, thumb_avatar, gender, mobile, email, "
        "biz_mail, qr_code and address are absent from user/get, user/list and export/user; the APIs in "
        "app_forbidden_apis (default user/list_id) answer 48002"
    ),
    "ids_only": (
        "the contact-sync secret from an IP added to its trusted IPs after 2022-08-15: only gettoken, "
        "department/simplelist and user/list_id answer (and the tag APIs with new_ips_read_tags); "
        "department/list, department/get, user/get, user/list, user/simplelist and the export jobs answer 48009"
    ),
}
CALLBACK_FORM_HELP = {
    "full": "a callback URL set before 2022-08-15: events carry every changed field",
    "ids_only": (
        "a callback URL set after 2022-08-15: member events carry only UserID (NewUserID on a rename) and "
        "Department, party events only Id and ParentId, and update_party fires only when the parent changes"
    ),
}


def regime_settings(regime: str) -> dict[str, Any]:
    """The ``SimulatorConfig`` settings a regime name stands for."""
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {tuple(REGIMES)}, got {regime!r}")
    return dict(REGIMES[regime])


def regime_name(secret_kind: str, new_ips: frozenset[str]) -> str:
    """The regime these settings amount to, or ``custom`` (e.g. one new IP among old ones)."""
    for name, settings in REGIMES.items():
        if settings == {"secret_kind": secret_kind, "new_ips": new_ips}:
            return name
    return "custom"


def check_rights_settings(
    secret: str, secret_kind: str, app_secrets: dict[str, str], app_forbidden_apis: frozenset[str], callback_form: str
) -> None:
    """ValueError naming the first setting WeCom could not have."""
    if secret_kind not in SECRET_KINDS:
        raise ValueError(f"secret_kind must be one of {SECRET_KINDS}, got {secret_kind!r}")
    for app_secret, kind in app_secrets.items():
        if kind not in APP_KINDS:
            raise ValueError(f"app secret kinds must be one of {APP_KINDS}, got {kind!r}")
        if not app_secret or app_secret == secret:
            raise ValueError("an app secret must be non-empty and differ from the contact-sync secret")
    unknown = app_forbidden_apis - APP_REFUSABLE_APIS
    if unknown:
        raise ValueError(f"app_forbidden_apis may only name {sorted(APP_REFUSABLE_APIS)}, got {sorted(unknown)}")
    if callback_form not in CALLBACK_FORMS:
        raise ValueError(f"callback_form must be one of {CALLBACK_FORMS}, got {callback_form!r}")


def refusal(
    kind: str, endpoint: str, *, new_ip: bool, app_forbidden_apis: frozenset[str], new_ips_read_tags: bool = False
) -> int | None:
    """The errcode WeCom answers a token of ``kind`` calling ``endpoint``, or None when allowed."""
    if kind == CONTACT_SYNC:
        allowed = ID_LIST_APIS | (TAG_APIS if new_ips_read_tags else frozenset())
        return ec.CONTACT_SYNC_FORBIDDEN if new_ip and endpoint not in allowed else None
    return ec.API_FORBIDDEN if endpoint in app_forbidden_apis else None


def withholds_sensitive(kind: str) -> bool:
    """Apps created after 2022-06-20 do not receive the sensitive member fields."""
    return kind == NEW_APP
