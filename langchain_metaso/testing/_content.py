"""Deterministic fake content: search results, reader pages and chat answers.

Everything is derived from the request through SHA-256 (never Python's salted ``hash``), so
the same request gets the same answer in every process.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SCOPES = {
    "webpage": "webpages",
    "document": "documents",
    "scholar": "scholars",
    "podcast": "podcasts",
    "video": "videos",
    "image": "images",
}

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
_CITED_FACTS = (
    "关于“{q}”,目前的资料给出了几种不同的说法{mark}。",
    "From the sources, {q} is mostly discussed in terms of {en}{mark}.",
    "有观点认为应当关注{zh},并结合原始数据判断{mark}。",
    "Several pages note that the answer depends on the context of the question{mark}.",
    "另有来源整理了相关的时间线和参考文献,便于进一步核实{mark}。",
)


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


def _chinese_date(rng: random.Random) -> str:
    return f"{rng.randint(2012, 2025)}年{rng.randint(1, 12):02d}月{rng.randint(1, 28):02d}日"


def _duration(rng: random.Random) -> str:
    seconds = rng.randint(60, 2 * 3600)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def search_total(q: str, scope: str) -> int:
    return 40 + int.from_bytes(_digest("total", q, scope)[:4], "big") % 161


def search_result(
    q: str, scope: str, position: int, *, summary: bool, raw_content: bool, concise: bool
) -> dict[str, Any]:
    """The result at 1-based ``position`` for (q, scope), whatever page size reached it.

    Every random draw happens whatever the flags, so the flags only add or remove fields.
    """
    rng = _rng("result", q, scope, position)
    words = _words(rng, q)
    sentences = [words.fill(s) for s in rng.sample(_SENTENCES, len(_SENTENCES))]
    key = _digest("link", q, scope, position).hex()[:20]
    item: dict[str, Any] = {
        "title": words.fill(rng.choice(_TITLES)),
        "link": f"https://{scope}.example.com/{key}",
        "score": rng.choices(_SCORES, weights=(5, 3, 1))[0],
        "snippet": sentences[0] if concise else "\n".join(sentences[:3]),
        "summary": words.fill(rng.choice(_SUMMARIES)),
        "position": position,
        "date": _chinese_date(rng),
    }
    authors = rng.sample(_AUTHORS, rng.randint(1, 3))
    duration = _duration(rng)
    width, height = rng.choice(_IMAGE_SIZES)
    if scope in ("document", "scholar"):
        item["authors"] = authors
    if scope in ("podcast", "video"):
        item["duration"] = duration
    if scope == "image":
        item.update(
            imageUrl=f"https://img.example.com/{key}.jpg", imageWidth=width, imageHeight=height
        )
    if raw_content:
        item["content"] = f"{item['title']}\n\n" + "\n\n".join(sentences) + "\n\n" + item["summary"]
    # With summaries on, the real service gives some results only a summary and others only a
    # snippet (see the seed); a fixed pattern by position keeps that predictable.
    if not summary:
        del item["summary"]
    elif position % 3 == 1:
        del item["snippet"]
    elif position % 3 == 2:
        del item["summary"]
    return item


@dataclass(frozen=True)
class Page:
    """A fake web page as the reader returns it; the title is the markdown's first heading."""

    author: str
    date: str
    markdown: str


def reader_page(url: str) -> Page:
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
    return Page(rng.choice(_AUTHORS), _chinese_date(rng), markdown + "\n")


@dataclass(frozen=True)
class ChatAnswer:
    text: str
    sources: list[dict[str, Any]]
    id: str


def chat_answer(q: str, scope: str, model: str, *, concise: bool) -> ChatAnswer:
    """An answer citing ``[[n]]`` the first few search results for the same question."""
    rng = _rng("chat", q, scope, model)
    count = rng.randint(3, len(_CITED_FACTS))
    sources = []
    for position in range(1, count + 1):
        result = search_result(
            q, scope, position, summary=False, raw_content=False, concise=concise
        )
        sources.append({key: result[key] for key in ("title", "link", "snippet", "position")})
    words = _words(rng, q)
    facts = [words.fill(fact, mark=f"[[{n}]]") for n, fact in enumerate(_CITED_FACTS[:count], 1)]
    text = f"问题:“{q}”。\n\n" + "\n".join(facts)
    return ChatAnswer(text, sources, "chatcmpl-" + _digest("id", q, scope, model).hex()[:24])
