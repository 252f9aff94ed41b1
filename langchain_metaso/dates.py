"""Publication dates as the Metaso API (``2025年05月16日``, ``2023-06-01``) and the pages it
finds (``2025/3/17``, ``3天前``, ``Mar 17, 2025``...) write them, read by ``parse_date`` for
the search filters and ``metadata["published"]`` alike.

What a date means here, so that a date read is never a guess:

- Only a whole day counts: ``2025年03月``, ``March 2025`` or ``2025`` read as ``None``, not
  as the first of a month (a filter would then drop a page that may be recent).
- A datetime counts by the calendar day it writes, whatever its time zone:
  ``2025-03-16T20:00:00Z`` is 2025-03-16.
- Relative ages count back from ``today``: hours and minutes in whole days (``5小时前`` is
  today, ``30小时前`` yesterday), months and years by the calendar (``1个月前`` on 03-31 is
  02-28), ``半`` as half the unit (``半年前`` is 6 months, ``半个月前`` 15 days).
- ``3月17日``, with no year, is the latest such day not after ``today``, as Chinese sites
  write this year's dates.
- Numeric day-first or month-first forms (``17/03/2025``, ``03/17/2025``) are ambiguous and
  read as ``None``, as do two-digit years.
- The first date in the text decides; an impossible one (``2025-02-30``) reads as ``None``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

__all__ = ["CHINA_TIME", "iso_date", "parse_date", "today_in_china"]

CHINA_TIME = timezone(timedelta(hours=8))
"""The API's calendar: Metaso serves China, whose time is UTC+8 all year."""

# A date field is short; a longer text is searched only this far, so junk costs little.
_TEXT_LIMIT = 100

_Reader = Callable[[re.Match[str], date], date | None]

# Written out: calendar.month_abbr follows the locale.
_MONTH_NUMBERS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_MONTH = (
    r"\b(?P<m>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_CHINESE_DIGITS = {**dict(zip("一二三四五六七八九", range(1, 10), strict=True)), "两": 2}
_WORD_DAYS = {
    **dict.fromkeys(("刚刚", "刚才", "今天", "今日", "just now", "today"), 0),
    **dict.fromkeys(("昨天", "昨日", "yesterday"), 1),
    "前天": 2,
    "大前天": 3,
}
# Every unit the two relative-age patterns below match, singular (plurals lose their s).
_UNITS = {
    **dict.fromkeys(("秒", "秒钟", "sec", "second"), "second"),
    **dict.fromkeys(("分", "分钟", "min", "minute"), "minute"),
    **dict.fromkeys(("小时", "钟头", "hr", "hour"), "hour"),
    **dict.fromkeys(("天", "日", "day"), "day"),
    **dict.fromkeys(("周", "星期", "礼拜", "wk", "week"), "week"),
    **dict.fromkeys(("月", "mo", "month"), "month"),
    **dict.fromkeys(("年", "yr", "year"), "year"),
}
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
_UNIT_MONTHS = {"month": 1, "year": 12}


def _ymd(match: re.Match[str], _today: date) -> date:
    month = match["m"]  # a number, or an English month's name
    number = int(month) if month.isdigit() else _MONTH_NUMBERS[month[:3].lower()]
    return date(int(match["y"]), number, int(match["d"]))


def _month_day(match: re.Match[str], today: date) -> date | None:
    month, day = int(match["m"]), int(match["d"])
    # Eight years back reach a 29 February even across a century that is not leap.
    for year in range(today.year, today.year - 9, -1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate
    return None


def _word(match: re.Match[str], today: date) -> date:
    return today - timedelta(days=_WORD_DAYS[match["word"].lower()])


def _ago(match: re.Match[str], today: date) -> date | None:
    halves = _halves(match["n"].lower())
    if halves is None:
        return None
    unit = match["unit"].lower()
    unit = _UNITS.get(unit) or _UNITS[unit.removesuffix("s")]
    if unit in _UNIT_MONTHS:
        months, half = divmod(halves * _UNIT_MONTHS[unit], 2)
        return _months_before(today, months) - timedelta(days=15 * half)
    # Counted in half units, so that 半 needs no float; a part of a day does not count.
    return today - timedelta(days=halves * _UNIT_SECONDS[unit] // (2 * 86400))


def _halves(amount: str) -> int | None:
    """Twice the amount (``半`` is one half), or ``None`` for a malformed numeral."""
    if amount.isdigit():
        return 2 * int(amount)
    if amount in ("a", "an", "one"):
        return 2
    if amount == "半":
        return 1
    tens, ten, units = amount.partition("十")
    if not ten:
        value = _CHINESE_DIGITS.get(amount)
        return None if value is None else 2 * value
    if len(tens) > 1 or len(units) > 1:
        return None
    high = _CHINESE_DIGITS.get(tens, 1 if not tens else None)
    low = _CHINESE_DIGITS.get(units, 0 if not units else None)
    if high is None or low is None:
        return None
    return 2 * (10 * high + low)


def _months_before(day: date, months: int) -> date:
    year, month0 = divmod(day.year * 12 + day.month - 1 - months, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


# Case matters to none (month names, "ago"); the Chinese forms have no letters.
_FORMS: tuple[tuple[re.Pattern[str], _Reader], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), reader)
    for pattern, reader in [
        # 2025年03月17日, 2025年3月7号, 2025 年 3 月 7 日
        (r"(?<!\d)(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})(?!\d)", _ymd),
        # 2025-03-17, 2025/3/17, 2025.03.17, and the date of 2025-03-17T08:00:00Z
        (r"(?<!\d)(?P<y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})(?!\d)", _ymd),
        # 20250317, only as the whole text: inside a text eight digits are too often not a date
        (r"\A(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})\Z", _ymd),
        # Mar 17, 2025; March 17th, 2025
        (_MONTH + r"\s*(?P<d>\d{1,2})(?:st|nd|rd|th)?\b,?\s*(?P<y>\d{4})(?!\d)", _ymd),
        # 17 March 2025; 17th of March, 2025; Mon, 17 Mar 2025 08:00:00 GMT
        (
            r"(?<!\d)(?P<d>\d{1,2})(?:st|nd|rd|th)?\s*(?:of\s+)?"
            + _MONTH
            + r",?\s*(?P<y>\d{4})(?!\d)",
            _ymd,
        ),
        # 3月17日, with no year
        (r"(?<![\d年])(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]", _month_day),
        # 今天, 昨天, 前天, 刚刚, yesterday
        (
            r"(?P<word>大前天|前天|昨天|昨日|今天|今日|刚刚|刚才"
            r"|\bjust now\b|\btoday\b|\byesterday\b)",
            _word,
        ),
        # 3天前, 5小时前, 三个月前, 半年前; not after 年: 2025年3月前 is "before March 2025"
        (
            r"(?<![\d年])(?P<n>\d{1,5}|[一二两三四五六七八九十]{1,3}|半)\s*个?\s*"
            r"(?P<unit>秒钟?|分钟?|小时|钟头|天|日|周|星期|礼拜|月|年)\s*[之以]?前",
            _ago,
        ),
        # 3 days ago, an hour ago, 5 mins ago
        (
            r"\b(?P<n>\d{1,5}|an?|one)\s*(?P<unit>secs?|seconds?|mins?|minutes?|hrs?|hours?"
            r"|days?|wks?|weeks?|mos?|months?|yrs?|years?)\s+ago\b",
            _ago,
        ),
    ]
)


def parse_date(text: str | None, *, today: date) -> date | None:
    """The day that ``text`` gives (the forms and rules of the module's docstring), or
    ``None`` if it gives none that can be read; ``today`` is the day relative ages count
    back from (see ``today_in_china``). Never raises."""
    if not isinstance(text, str):
        return None
    text = text.strip()[:_TEXT_LIMIT]
    found: tuple[re.Match[str], _Reader] | None = None
    for pattern, reader in _FORMS:
        match = pattern.search(text)
        if match and (found is None or match.start() < found[0].start()):
            found = (match, reader)
            if match.start() == 0:  # none can start earlier: the API's own forms stop here
                break
    if found is None:
        return None
    match, reader = found
    try:
        return reader(match, today)
    except (ValueError, OverflowError):  # an impossible day, or an age beyond the calendar
        return None


def iso_date(text: str | None, *, today: date) -> str | None:
    """``parse_date`` as an ISO string (``2025-03-17``), the form of ``metadata["published"]``."""
    day = parse_date(text, today=today)
    return None if day is None else day.isoformat()


def today_in_china(now: datetime | None = None) -> date:
    """Today in China (UTC+8), the calendar the API's dates and relative ages are written
    in; on the day of ``now``, an aware datetime, if given."""
    return (now or datetime.now(timezone.utc)).astimezone(CHINA_TIME).date()
