"""Issue 11.3: publication dates as the API and the pages it finds write them."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from langchain_metaso.dates import iso_date, parse_date, today_in_china

# The last day of a month after a short one: month arithmetic must clamp (1个月前 is 02-28).
TODAY = date(2025, 3, 31)

# What live answers carry (the seed's webpages, the captured scholar answer): copied here,
# since tests never read /work/shared.
REAL_DATES = [
    ("2010年01月01日", date(2010, 1, 1)),
    ("2025年03月17日", date(2025, 3, 17)),
    ("2025年05月16日", date(2025, 5, 16)),
    ("2023-06-01", date(2023, 6, 1)),
    ("2024-06-17", date(2024, 6, 17)),
]

ABSOLUTE = [
    ("2025年3月7日", date(2025, 3, 7)),
    ("2025 年 3 月 7 日", date(2025, 3, 7)),
    ("2025年03月17号", date(2025, 3, 17)),
    ("2025年03月17", date(2025, 3, 17)),
    ("2025年03月17日 08:30", date(2025, 3, 17)),
    ("发布于 2025年03月17日", date(2025, 3, 17)),
    ("２０２５年０３月１７日", date(2025, 3, 17)),  # full-width digits
    ("2025-3-7", date(2025, 3, 7)),
    ("2025/3/17", date(2025, 3, 17)),
    ("2025/03/17", date(2025, 3, 17)),
    ("2025.03.17", date(2025, 3, 17)),
    ("20250317", date(2025, 3, 17)),
    (" 20250317 ", date(2025, 3, 17)),
    ("2025-03-17T08:00:00Z", date(2025, 3, 17)),
    ("2025-03-17T08:00:00.123+08:00", date(2025, 3, 17)),
    # The calendar day written, not converted: in UTC+8 this is already 03-17.
    ("2025-03-16T20:00:00Z", date(2025, 3, 16)),
    ("2025-03-17 08:00", date(2025, 3, 17)),
    ("更新时间：2025-03-17", date(2025, 3, 17)),
    ("2024-02-29", date(2024, 2, 29)),
    ("Mar 17, 2025", date(2025, 3, 17)),
    ("March 17, 2025", date(2025, 3, 17)),
    ("Mar. 17, 2025", date(2025, 3, 17)),
    ("MARCH 17 2025", date(2025, 3, 17)),
    ("March 17th, 2025", date(2025, 3, 17)),
    ("Sept 1, 2024", date(2024, 9, 1)),
    ("Monday, March 17, 2025", date(2025, 3, 17)),
    ("17 March 2025", date(2025, 3, 17)),
    ("17 Mar 2025", date(2025, 3, 17)),
    ("1st of December, 2024", date(2024, 12, 1)),
    ("Mon, 17 Mar 2025 08:00:00 GMT", date(2025, 3, 17)),
    # With no year: the latest such day not after TODAY.
    ("3月17日", date(2025, 3, 17)),
    ("03月31日 09:00", date(2025, 3, 31)),
    ("12月30日", date(2024, 12, 30)),
    ("2月29日", date(2024, 2, 29)),
]

RELATIVE = [
    ("刚刚", TODAY),
    ("刚才", TODAY),
    ("今天", TODAY),
    ("今天 08:15", TODAY),
    ("昨天", date(2025, 3, 30)),
    ("昨天 14:30", date(2025, 3, 30)),
    ("昨日", date(2025, 3, 30)),
    ("前天", date(2025, 3, 29)),
    ("大前天", date(2025, 3, 28)),
    ("10秒前", TODAY),
    ("10分钟前", TODAY),
    ("5小时前", TODAY),
    ("23小时前", TODAY),
    ("24小时前", date(2025, 3, 30)),
    ("30小时前", date(2025, 3, 30)),
    ("半小时前", TODAY),
    ("3天前", date(2025, 3, 28)),
    ("3 天前", date(2025, 3, 28)),
    ("3天以前", date(2025, 3, 28)),
    ("0天前", TODAY),
    ("三天前", date(2025, 3, 28)),
    ("十天前", date(2025, 3, 21)),
    ("十五天前", date(2025, 3, 16)),
    ("二十一天前", date(2025, 3, 10)),
    ("2周前", date(2025, 3, 17)),
    ("两周前", date(2025, 3, 17)),
    ("1个星期前", date(2025, 3, 24)),
    ("1个月前", date(2025, 2, 28)),
    ("3个月前", date(2024, 12, 31)),
    ("半个月前", date(2025, 3, 16)),
    ("半年前", date(2024, 9, 30)),
    ("1年前", date(2024, 3, 31)),
    ("一年前", date(2024, 3, 31)),
    ("just now", TODAY),
    ("Today", TODAY),
    ("yesterday", date(2025, 3, 30)),
    ("3 days ago", date(2025, 3, 28)),
    ("3days ago", date(2025, 3, 28)),
    ("a day ago", date(2025, 3, 30)),
    ("an hour ago", TODAY),
    ("72 hours ago", date(2025, 3, 28)),
    ("5 mins ago", TODAY),
    ("2 weeks ago", date(2025, 3, 17)),
    ("1 month ago", date(2025, 2, 28)),
    ("2 Years Ago", date(2023, 3, 31)),
]

UNREADABLE = [
    None,
    "",
    "   ",
    "junk",
    "未知",
    "2025-02-30",
    "2025-13-01",
    "2025年02月30日",
    "2025年13月01日",
    "0000-01-01",
    "2月30日",
    # Partial dates: a month or a year is not a day.
    "2025年03月",
    "2025-03",
    "2025",
    "March 2025",
    # Ambiguous or not a date.
    "17/03/2025",
    "03/17/2025",
    "25-03-17",
    "2025-03/17",
    "12025-03-17",
    "202503170",
    "v1.2.3",
    "1年3个月前",  # a compound age is not read as 3 months
    "2025年3月前",  # "before March 2025", not an age
    "二三天前",
    "十十天前",
    "天前",
    "days ago",
    "99999年前",  # beyond the calendar
    "100000天前",
]


@pytest.mark.parametrize(("text", "expected"), REAL_DATES + ABSOLUTE + RELATIVE)
def test_parse_date_reads(text: str, expected: date) -> None:
    assert parse_date(text, today=TODAY) == expected


@pytest.mark.parametrize("text", UNREADABLE)
def test_parse_date_reads_none(text: str | None) -> None:
    assert parse_date(text, today=TODAY) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The first date in the text decides, even when it is impossible.
        ("更新 2025-03-17 发布 2024-01-01", date(2025, 3, 17)),
        ("3天前 (2020-01-01)", date(2025, 3, 28)),
        ("2020-01-01，3天前", date(2020, 1, 1)),
        ("2025-02-30 or 2025-03-01", None),
    ],
)
def test_the_first_date_in_the_text_decides(text: str, expected: date | None) -> None:
    assert parse_date(text, today=TODAY) == expected


def test_a_long_text_is_only_searched_at_its_start() -> None:
    assert parse_date("x" * 200 + "2025-03-17", today=TODAY) is None
    assert parse_date("x" * 50 + "2025-03-17", today=TODAY) == date(2025, 3, 17)


def test_relative_ages_count_from_the_given_day() -> None:
    assert parse_date("3天前", today=date(2024, 1, 2)) == date(2023, 12, 30)
    assert parse_date("1年前", today=date(2024, 2, 29)) == date(2023, 2, 28)


def test_ages_beyond_the_calendar_read_as_none() -> None:
    assert parse_date("昨天", today=date.min) is None
    assert parse_date("1个月前", today=date(1, 1, 15)) is None


def test_a_value_that_is_not_text_reads_as_none() -> None:
    assert parse_date(20250317, today=TODAY) is None  # type: ignore[arg-type]


def test_iso_date() -> None:
    assert iso_date("2025年05月16日", today=TODAY) == "2025-05-16"
    assert iso_date("昨天", today=TODAY) == "2025-03-30"
    assert iso_date("2025年05月", today=TODAY) is None
    assert iso_date(None, today=TODAY) is None


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2025, 3, 16, 15, 59, tzinfo=timezone.utc), date(2025, 3, 16)),
        (datetime(2025, 3, 16, 16, 0, tzinfo=timezone.utc), date(2025, 3, 17)),
        (datetime(2025, 3, 16, 23, 0, tzinfo=timezone(timedelta(hours=-5))), date(2025, 3, 17)),
    ],
)
def test_today_in_china(now: datetime, expected: date) -> None:
    assert today_in_china(now) == expected


def test_today_in_china_reads_the_clock() -> None:
    before = datetime.now(timezone.utc) + timedelta(hours=8)
    today = today_in_china()
    after = datetime.now(timezone.utc) + timedelta(hours=8)
    assert today in (before.date(), after.date())


DATE_CHARS = "0123456789年月日号天前后小时分钟秒周星期个半一二两三十 -/.:T,Zagoyesterdayjustnow"


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(st.text(), st.text(alphabet=DATE_CHARS)), today=st.dates())
@example(text="9999-12-31", today=date.max)
@example(text="99999天前", today=date.min)
@example(text="2月29日", today=date(1, 1, 1))
def test_parse_date_never_raises(text: str, today: date) -> None:
    result = parse_date(text, today=today)
    assert result is None or isinstance(result, date)


# Written out: strftime's names follow the locale.
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@given(day=st.dates(min_value=date(1000, 1, 1)))
def test_every_day_reads_back_in_the_apis_forms(day: date) -> None:
    forms = [
        f"{day.year}年{day.month:02d}月{day.day:02d}日",
        f"{day.year}年{day.month}月{day.day}日",
        day.isoformat(),
        f"{day.year}/{day.month}/{day.day}",
        day.strftime("%Y%m%d"),
        f"{MONTHS[day.month - 1]} {day.day}, {day.year}",
        f"{day.day} {MONTHS[day.month - 1]} {day.year}",
    ]
    for text in forms:
        assert parse_date(text, today=TODAY) == day, text


# Ages are read up to five digits: 4000 days are 96000 hours.
@given(days=st.integers(min_value=0, max_value=4000), today=st.dates(min_value=date(2000, 1, 1)))
def test_days_ago_counts_back_exactly(days: int, today: date) -> None:
    expected = today - timedelta(days=days)
    assert parse_date(f"{days}天前", today=today) == expected
    assert parse_date(f"{days} days ago", today=today) == expected
    assert parse_date(f"{days * 24}小时前", today=today) == expected
