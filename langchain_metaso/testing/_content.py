"""Deterministic fake content: search results, reader pages and chat answers.

Everything is derived from the request through SHA-256 (never Python's salted ``hash``), so
the same request gets the same answer in every process. Dates count back from the
emulator's ``today``: the same request on the same ``today`` gets the same answer.

The shapes follow live answers: key order, score words, dates ``2025年05月16日`` for web
pages and ``2023-06-01`` elsewhere, image results without a ``link``, durations in seconds.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

_TOPICS = (
    ("历史回顾", "a short history"),
    ("最新进展", "the latest developments"),
    ("专家观点", "what experts say"),
    ("常见问题", "frequently asked questions"),
    ("数据分析", "the numbers behind it"),
    ("入门指南", "a beginner's guide"),
    ("案例研究", "case studies"),
    ("争议与讨论", "the ongoing debate"),
)
_TITLES = (
    "{q}:{zh}全面解析",
    "{q} - {en_title}",
    "关于“{q}”的{zh}",
    "Understanding {q}: {en}",
    "{q}({zh}与{en})",
)
_SENTENCES = (
    "本文围绕“{q}”展开,介绍了{zh}的主要内容。",
    "This page discusses {q}, with a focus on {en}.",
    "多位研究者指出,“{q}”需要结合具体背景来理解。",
    "Readers searching for {q} usually want clear, sourced answers.",
    "文章还整理了与{zh}相关的关键时间线和参考资料。",
    "The author compares several viewpoints and cites primary sources.",
)
_SUMMARIES = (
    "这篇文章讨论了“{q}”,重点介绍{zh},并给出了多方观点。",
    "A summary of {q}: the page covers {en} and lists its references.",
    "该页面从{zh}的角度回答了“{q}”,结论较为审慎。",
)
_AUTHORS = ("张伟", "李娜", "王芳", "Emily Chen", "David Smith", "刘洋", "María García", "陈静")
_SCORES = ("high", "medium", "low")
_IMAGE_SIZES = ((640, 480), (800, 600), (1024, 768), (1280, 720), (1920, 1080), (1080, 1350))
_IMAGE_TYPES = ("jpg", "png", "webp")
# Hosts for result links, so that site filters have something to tell apart: a domain with
# its subdomains, a look-alike that merely ends with its name, and unrelated domains.
_HOSTS = (
    "www.example.com",
    "news.example.com",
    "example.com",
    "badexample.com",
    "www.example.org",
    "docs.example.org",
    "example.net",
    "blog.example.net",
    "www.example.edu",
    "m.example.cn",
)
_PATHS = ("/{key}", "/article/{key}.html", "/p/{key}", "/news/{key}/")
_IMAGE_HOST = "img.example.com"
# Result dates reach this far back, recent ones more often than old ones.
_DATE_SPAN_DAYS = 6 * 365
# Some real pages carry no date, and some web pages a relative one ("3天前"), as displayed.
_UNDATED_SHARE = 0.08
_RELATIVE_SHARE = 0.08
_REASONING = (
    "用户问的是“{q}”。",
    "先看来源[1]和[2]:它们从{zh}的角度讨论这个问题。",
    "再对照其余来源,找出一致的说法,标出分歧。",
    "最后按来源整理答案,每个论断都注明出处。",
)
_CITED_FACTS = (
    "关于“{q}”,目前的资料给出了几种不同的说法{mark}。",
    "From the sources, {q} is mostly discussed in terms of {en}{mark}.",
    "有观点认为应当关注{zh},并结合原始数据判断{mark}。",
    "Several pages note that the answer depends on the context of the question{mark}.",
    "另有来源整理了相关的时间线和参考文献,便于进一步核实{mark}。",
)
# The fields of a search result a chat citation keeps, in this order.
_CITATION_FIELDS = ("title", "link", "imageUrl", "snippet", "position", "date")


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()


def _rng(*parts: object) -> random.Random:
    # Seeded for reproducible fake text, not for anything secret.
    return random.Random(int.from_bytes(_digest(*parts)[:8], "big"))  # noqa: S311


@dataclass(frozen=True)
class _Words:
    """Text fragments chosen for one result, ready for the templates."""

    q: str
    zh: str
    en: str

    @property
    def en_title(self) -> str:
        return self.en[:1].upper() + self.en[1:]

    def fill(self, template: str, **extra: str) -> str:
        return template.format(q=self.q, zh=self.zh, en=self.en, en_title=self.en_title, **extra)


def _words(rng: random.Random, q: str) -> _Words:
    zh, en = rng.choice(_TOPICS)
    return _Words(q, zh, en)


def _chinese_date(day: date) -> str:
    """A date as web page results give it, ``2025年05月16日``."""
    return f"{day.year}年{day.month:02d}月{day.day:02d}日"


def _past_day(rng: random.Random, today: date) -> date:
    # Squared, so recent dates are more common than old ones, as in real results.
    return today - timedelta(days=int(rng.random() ** 2 * _DATE_SPAN_DAYS))


def _date(rng: random.Random, today: date, scope: str) -> str | None:
    """A result's date in its scope's format, or a relative one, or None; three draws always."""
    roll = rng.random()
    day = _past_day(rng, today)
    days_ago = rng.randint(1, 6)
    if roll < _UNDATED_SHARE:
        return None
    if scope != "webpage":
        return day.isoformat()
    if roll < _UNDATED_SHARE + _RELATIVE_SHARE:
        return "昨天" if days_ago == 1 else f"{days_ago}天前"
    return _chinese_date(day)


def search_total(q: str, scope: str) -> int:
    return 40 + int.from_bytes(_digest("total", q, scope)[:4], "big") % 161


def _link(rng: random.Random, q: str, scope: str, position: int, key: str) -> str:
    # Consecutive positions take consecutive hosts, so any page of ten sees every host.
    offset = int.from_bytes(_digest("hosts", q, scope)[:4], "big")
    host = _HOSTS[(offset + position) % len(_HOSTS)]
    scheme = "http" if rng.random() < 0.2 else "https"
    return f"{scheme}://{host}{rng.choice(_PATHS).format(key=key)}"


def search_result(
    q: str,
    scope: str,
    position: int,
    *,
    today: date,
    summary: bool,
    raw_content: bool,
    concise: bool,
) -> dict[str, Any]:
    """The result at 1-based ``position`` for (q, scope), whatever page size reached it.

    Every random draw happens whatever the flags, so the flags only add or remove fields;
    ``today`` moves the dates only.
    """
    rng = _rng("result", q, scope, position)
    words = _words(rng, q)
    sentences = [words.fill(s) for s in rng.sample(_SENTENCES, len(_SENTENCES))]
    key = _digest("link", q, scope, position).hex()[:20]
    title = words.fill(rng.choice(_TITLES))
    link = _link(rng, q, scope, position, key)
    score = rng.choices(_SCORES, weights=(5, 3, 1))[0]
    snippet = sentences[0] if concise else "\n".join(sentences[:3])
    page_summary = words.fill(rng.choice(_SUMMARIES))
    when = _date(rng, today, scope)
    authors = rng.sample(_AUTHORS, rng.randint(1, 3))
    # Web pages name an author now and then (see the seed); other scopes always do.
    has_author = scope != "webpage" or rng.random() < 0.3
    duration = str(rng.randint(60, 2 * 3600))
    width, height = rng.choice(_IMAGE_SIZES)
    image_type = rng.choice(_IMAGE_TYPES)
    if scope == "image":
        return {
            "title": title,
            "score": score,
            "position": position,
            "imageUrl": f"https://{_IMAGE_HOST}/{key}.{image_type}",
            "imageWidth": width,
            "imageHeight": height,
        }
    # With summaries on, the real service gives some results only a summary and others only a
    # snippet (see the seed), others both; a fixed pattern by position keeps that predictable.
    item: dict[str, Any] = {"title": title, "link": link, "score": score}
    if summary and position % 3 != 2:
        item["summary"] = page_summary
    if not summary or position % 3 != 1:
        item["snippet"] = snippet
    item["position"] = position
    # Web pages put the date before the authors, the other scopes after (as live answers do).
    # Document (文库) results carry no date, as the real ones.
    if scope == "webpage":
        item.update(_present(date=when, authors=authors[:1] if has_author else None))
    else:
        item.update(_present(authors=authors, date=None if scope == "document" else when))
    if scope in ("podcast", "video"):
        item["duration"] = duration
    if scope == "video":
        item["coverImage"] = f"https://{_IMAGE_HOST}/cover/{key}.jpg"
    if raw_content:
        item["content"] = f"{title}\n\n" + "\n\n".join(sentences) + "\n\n" + page_summary
    return item


def _present(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


@dataclass(frozen=True)
class Page:
    """A fake web page as the reader returns it; the title is the markdown's first heading."""

    author: str
    date: str
    markdown: str


def reader_page(url: str, today: date) -> Page:
    parts = urlsplit(url)
    rng = _rng("page", url)
    words = _words(rng, f"{parts.hostname}{parts.path}")
    title = f"{words.q} — {words.zh} / {words.en_title}"
    paragraphs = [words.fill(s) for s in rng.sample(_SENTENCES, len(_SENTENCES))]
    markdown = "\n\n".join(
        (
            f"# {title}",
            " ".join(paragraphs[:3]),
            f"## {words.zh}",
            "\n".join(f"- {p}" for p in paragraphs[3:]),
            words.fill(rng.choice(_SUMMARIES)),
        )
    )
    author = rng.choice(_AUTHORS)
    return Page(author, _chinese_date(_past_day(rng, today)), markdown + "\n")


@dataclass(frozen=True)
class ChatAnswer:
    """A chat answer: its text, the thinking of the reasoning models, and its citations."""

    id: str
    text: str
    # Empty for ``fast``; pieces streamed one by one as ``reasoning_content``.
    reasoning: tuple[str, ...]
    citations: list[dict[str, Any]]
    prompt_tokens: int
    completion_tokens: int

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def _tokens(text: str) -> int:
    # Roughly what tokenizers make of mixed Chinese and English text.
    return max(1, (len(text) + 1) // 2)


def chat_answer(
    q: str,
    history: Sequence[tuple[str, str]],
    scope: str,
    model: str,
    *,
    concise: bool,
    today: date,
    reasoning: bool,
) -> ChatAnswer:
    """An answer to ``q`` citing ``[[n]]`` the first few search results for it.

    ``history`` is the (role, text) messages before the question; it changes the answer,
    as a conversation would. ``reasoning`` adds the thinking steps of a reasoning model.
    """
    seed = ("chat", q, json.dumps(list(history), ensure_ascii=False), scope, model)
    rng = _rng(*seed)
    count = rng.randint(3, len(_CITED_FACTS))
    citations = []
    for position in range(1, count + 1):
        result = search_result(
            q, scope, position, today=today, summary=False, raw_content=False, concise=concise
        )
        citations.append({key: result[key] for key in _CITATION_FIELDS if key in result})
    words = _words(rng, q)
    facts = [words.fill(fact, mark=f"[[{n}]]") for n, fact in enumerate(_CITED_FACTS[:count], 1)]
    opening = f"问题:“{q}”。"
    if history:
        opening = f"结合前面的 {len(history)} 条消息,{opening}"
    text = opening + "\n\n" + "\n".join(facts)
    thinking = tuple(words.fill(step) for step in _REASONING) if reasoning else ()
    prompt = "".join(content for _, content in history) + q
    return ChatAnswer(
        id="chatcmpl-" + _digest("id", *seed).hex()[:24],
        text=text,
        reasoning=thinking,
        citations=citations,
        prompt_tokens=_tokens(prompt),
        completion_tokens=_tokens("".join(thinking) + text),
    )
