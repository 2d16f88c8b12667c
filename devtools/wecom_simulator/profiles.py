"""Member profile fields derived on demand from (seed, member index).

A 1,000,000-member directory cannot keep ~25 strings per member in memory, so
generated members store only their structure (departments, leaders) and every
other field is recomputed from a hash of ``(seed, index)`` when a payload is
built. The same inputs always give the same profile, which keeps the generator
deterministic without storing its output. Edited members get a stored profile
(see ``Member.profile``) that replaces the derived one.
"""

from __future__ import annotations

import hashlib
from typing import Any

SURNAMES: tuple[tuple[str, str], ...] = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("高", "gao"),
    ("林", "lin"), ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"),
    ("唐", "tang"), ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"),
    ("彭", "peng"), ("曾", "zeng"), ("萧", "xiao"), ("田", "tian"), ("董", "dong"), ("潘", "pan"),
    ("袁", "yuan"), ("蔡", "cai"), ("蒋", "jiang"), ("余", "yu"), ("欧阳", "ouyang"), ("司马", "sima"),
)  # fmt: skip

GIVEN: tuple[tuple[str, str], ...] = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"),
    ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"),
    ("霞", "xia"), ("平", "ping"), ("刚", "gang"), ("桂", "gui"), ("英", "ying"), ("华", "hua"),
    ("玉", "yu"), ("文", "wen"), ("辉", "hui"), ("建", "jian"), ("鹏", "peng"), ("婷", "ting"),
    ("宇", "yu"), ("浩", "hao"), ("晨", "chen"), ("欣", "xin"), ("怡", "yi"), ("子", "zi"),
    ("轩", "xuan"), ("涵", "han"), ("梓", "zi"), ("博", "bo"), ("思", "si"), ("雨", "yu"),
    ("佳", "jia"), ("嘉", "jia"), ("一", "yi"), ("诺", "nuo"), ("昊", "hao"), ("然", "ran"),
    ("琪", "qi"), ("瑶", "yao"), ("晓", "xiao"), ("天", "tian"), ("海", "hai"), ("龙", "long"),
    ("鑫", "xin"), ("睿", "rui"), ("泽", "ze"), ("凯", "kai"), ("雪", "xue"), ("峰", "feng"),
)  # fmt: skip

POSITIONS = ("工程师", "高级工程师", "产品经理", "设计师", "销售代表", "客户经理", "财务专员", "人事专员",
             "运营专员", "总监", "经理", "主管", "实习生", "法务顾问", "测试工程师", "数据分析师", "")  # fmt: skip
CITIES = ("北京市海淀区", "上海市浦东新区", "广州市天河区", "深圳市南山区", "杭州市西湖区", "成都市高新区",
          "武汉市洪山区", "南京市鼓楼区", "西安市雁塔区", "苏州市工业园区")  # fmt: skip
STREETS = ("科技园路", "中关村大街", "张江路", "滨江大道", "人民路", "解放路", "文一西路", "天府大道")
HOBBIES = ("旅游", "阅读", "羽毛球", "摄影", "围棋", "跑步", "烹饪", "书法", "")
COST_CENTRES = ("CC-1001", "CC-1042", "CC-2010", "CC-3300", "CC-4120")
MINIPROGRAM_APPID = "wx1234567890abcdef"
EMAIL_DOMAIN = "example.com"
BIZ_MAIL_DOMAIN = "example.wecom.work"
CORP_SHORT_NAME = "示例科技"

# Statuses in the order they are handed to the first members so every small org has each one.
STATUS_FIRST = (1, 2, 4, 5)
STATUS_WEIGHTS = ((1, 880), (2, 40), (4, 60), (5, 20))
_STATUS_TOTAL = sum(weight for _, weight in STATUS_WEIGHTS)

# Fields an app created after 2022-06-20 no longer receives (thumb_avatar is the avatar's thumbnail).
SENSITIVE_FIELDS = frozenset({"avatar", "thumb_avatar", "gender", "mobile", "email", "biz_mail", "qr_code", "address"})

# Every profile field with the value WeCom reports when it was never set.
PROFILE_DEFAULTS: dict[str, Any] = {
    "name": "",
    "position": "",
    "mobile": "",
    "gender": "0",
    "email": "",
    "biz_mail": "",
    "avatar": "",
    "thumb_avatar": "",
    "telephone": "",
    "alias": "",
    "address": "",
    "open_userid": "",
    "status": 4,
    "qr_code": "",
    "external_position": "",
    "external_profile": {"external_corp_name": "", "external_attr": []},
    "extattr": {"attrs": []},
}


class Draw:
    """Deterministic choices from one 512-bit hash: cheaper than seeding a ``random.Random`` per member."""

    __slots__ = ("_bits",)

    def __init__(self, digest: bytes) -> None:
        self._bits = int.from_bytes(digest, "big")

    def below(self, n: int) -> int:
        """A number in ``range(n)``; consumes about log2(n) of the hashed bits."""
        self._bits, value = divmod(self._bits, n)
        return value

    def pick(self, choices: tuple[Any, ...]) -> Any:
        return choices[self.below(len(choices))]

    def chance(self, per_thousand: int) -> bool:
        return self.below(1000) < per_thousand

    def digits(self, count: int) -> str:
        return str(self.below(10**count)).zfill(count)


_M64 = 2**64 - 1


def _mix(seed: int, index: int) -> int:
    """splitmix64 of (seed, index): identities are needed for every member at generation time, so cheap."""
    z = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def identity(seed: int, index: int) -> tuple[str, str]:
    """The Chinese name and its pinyin for a generated member; the generator builds userids from the pinyin."""
    h = _mix(seed, index)
    h, s = divmod(h, len(SURNAMES))
    h, g1 = divmod(h, len(GIVEN))
    surname, surname_py = SURNAMES[s]
    given, given_py = GIVEN[g1]
    if h % 4 == 0:
        return surname + given, surname_py + given_py
    second, second_py = GIVEN[(h >> 2) % len(GIVEN)]
    return surname + given + second, surname_py + given_py + second_py


def _status(draw: Draw, index: int) -> int:
    if index < len(STATUS_FIRST):
        return STATUS_FIRST[index]
    ticket = draw.below(_STATUS_TOTAL)
    for status, weight in STATUS_WEIGHTS:
        if ticket < weight:
            return status
        ticket -= weight
    raise AssertionError("weights exhausted")


def derive_profile(seed: int, index: int) -> dict[str, Any]:
    """Every non-structural field of generated member ``index``: unicode names, all statuses, extattrs."""
    name, pinyin = identity(seed, index)
    key = f"{seed}:{index}".encode()
    draw = Draw(hashlib.blake2b(key, digest_size=64, person=b"profile").digest())
    ids = hashlib.blake2b(key, digest_size=43, person=b"ids").hexdigest()
    avatar_id, open_userid, vcode = ids[:40], ids[40:70], ids[70:86]
    local = f"{pinyin}.{index}"
    has_avatar = draw.chance(850)
    position = draw.pick(POSITIONS)
    return {
        "name": name,
        "position": position,
        "mobile": draw.pick(("138", "139", "150", "186", "177")) + draw.digits(8),
        "gender": str(draw.below(3)),
        "email": f"{local}@{EMAIL_DOMAIN}" if draw.chance(900) else "",
        "biz_mail": f"{local}@{BIZ_MAIL_DOMAIN}" if draw.chance(600) else "",
        "avatar": f"https://wework.qpic.cn/wwpic/{avatar_id}/0" if has_avatar else "",
        "thumb_avatar": f"https://wework.qpic.cn/wwpic/{avatar_id}/100" if has_avatar else "",
        "telephone": f"0{draw.below(900) + 10}-{draw.digits(8)}" if draw.chance(300) else "",
        "alias": pinyin.capitalize() if draw.chance(400) else "",
        "address": f"{draw.pick(CITIES)}{draw.pick(STREETS)}{draw.below(999) + 1}号" if draw.chance(500) else "",
        "open_userid": "wo" + open_userid,
        "status": _status(draw, index),
        "qr_code": f"https://open.work.weixin.qq.com/wwopen/userQRCode?vcode=vc{vcode}",
        "external_position": position if draw.chance(300) else "",
        "external_profile": {
            "external_corp_name": CORP_SHORT_NAME,
            "external_attr": [{"type": 0, "name": "工号", "text": {"value": f"E{index:07d}"}}],
        },
        "extattr": {"attrs": _custom_fields(draw, index, name, local)},
    }


def _custom_fields(draw: Draw, index: int, name: str, local: str) -> list[dict[str, Any]]:
    """The company's custom fields (自定义字段) of one member: text, web and, for some, a mini program.

    A hobby is sometimes set to nothing: WeCom then sends the attribute with an empty value.
    """
    attrs: list[dict[str, Any]] = [
        {"type": 0, "name": "爱好", "text": {"value": draw.pick(HOBBIES)}},
        {"type": 1, "name": "个人主页", "web": {"url": f"https://home.example.com/{local}", "title": f"{name}的主页"}},
        {"type": 0, "name": "工号", "text": {"value": f"E{index:07d}"}},
        {"type": 0, "name": "成本中心", "text": {"value": draw.pick(COST_CENTRES)}},
    ]
    if draw.chance(100):
        page = {"appid": MINIPROGRAM_APPID, "pagepath": f"/card/index?u={local}", "title": "电子名片"}
        attrs.append({"type": 2, "name": "名片", "miniprogram": page})
    return attrs
