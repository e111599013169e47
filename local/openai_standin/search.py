"""Retrieval for file search: chunking, BM25 ranking and attribute filters.

OpenAI ranks chunks with embeddings plus keywords; the stand-in ranks with BM25 (``bm25s``) over
the same unit, chunks cut by the file's chunking strategy, so answers and citations depend on which
document actually holds the words of the question. Token counts here are estimates (about four
characters per token); nothing downloads a tokenizer.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CHARS_PER_TOKEN = 4

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SPAN = re.compile(r"\S+")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")

# bm25s' English list plus the words every question carries, which would otherwise match everything.
_STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no",
    "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this",
    "to", "was", "will", "with", "what", "which", "who", "whom", "how", "when", "where", "why", "does",
    "do", "did", "can", "could", "would", "should", "about", "tell", "me", "my", "our", "we", "you",
    "your", "please", "has", "have", "had", "been", "were", "its", "any", "all", "from", "so", "than",
})

Attributes = Mapping[str, str | int | float | bool]


@dataclass(frozen=True)
class Chunk:
    """One searchable passage of a vector store file."""

    file_id: str
    filename: str
    text: str
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A ranked chunk; ``score`` is in [0, 1], higher is more relevant."""

    chunk: Chunk
    score: float


def estimate_tokens(text: str) -> int:
    """Estimated token count of ``text`` (about four characters per token; 0 for empty text)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def chunk_text(text: str, max_tokens: int, overlap_tokens: int) -> list[str]:
    """Cut ``text`` into passages of about ``max_tokens`` overlapping by ``overlap_tokens``, on word bounds."""
    spans = [match.span() for match in _SPAN.finditer(text)]
    if not spans:
        return []
    budget = max_tokens * CHARS_PER_TOKEN
    overlap = overlap_tokens * CHARS_PER_TOKEN
    chunks: list[str] = []
    first = 0
    while first < len(spans):
        last = first
        while last + 1 < len(spans) and spans[last + 1][1] - spans[first][0] <= budget:
            last += 1
        chunks.append(text[spans[first][0]:spans[last][1]])
        if last + 1 >= len(spans):
            break
        resume_at = spans[last][1] - overlap
        following = next((i for i in range(first + 1, last + 1) if spans[i][0] >= resume_at), last + 1)
        first = max(following, first + 1)
    return chunks


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, lightly stemmed word tokens of ``text``."""
    tokens = []
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        tokens.append(_stem(word))
    return tokens


def rank(chunks: Sequence[Chunk], query: str, *, max_results: int, score_threshold: float = 0.0) -> list[Hit]:
    """The chunks that share words with ``query``, best first, at most ``max_results``."""
    bm25s = _bm25s()
    query_tokens = tokenize(query)
    corpus = [tokenize(chunk.text) for chunk in chunks]
    if not query_tokens or not any(corpus):
        return []
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    scores = retriever.get_scores(query_tokens)
    hits = [Hit(chunk, _normalise(float(raw))) for chunk, raw in zip(chunks, scores) if raw > 0.0]
    hits = [hit for hit in hits if hit.score >= score_threshold]
    hits.sort(key=lambda hit: hit.score, reverse=True)
    return hits[:max_results]


@functools.cache
def _bm25s() -> Any:
    """``bm25s``, imported on first use, with its logger inheriting the application's level again.

    Its import sets its own logger to DEBUG, which overrides the level the application chose: every
    ranking then wrote a line to stderr. A stand-in whose stderr is a pipe nobody reads stopped
    answering once the pipe was full (about 1,000 turns): every request thread blocked on the
    logging lock behind the one blocked writing.
    """
    import bm25s  # type: ignore[import-untyped]

    logging.getLogger("bm25s").setLevel(logging.NOTSET)
    return bm25s


def best_sentences(text: str, query: str, *, limit: int = 2, max_chars: int = 400) -> str:
    """The sentences of ``text`` sharing the most words with ``query``, in their original order."""
    sentences = [" ".join(s.split()) for s in _SENTENCE_BREAK.split(text) if s.strip()]
    if not sentences:
        return ""
    wanted = set(tokenize(query))
    overlap = [(len(wanted & set(tokenize(sentence))), index) for index, sentence in enumerate(sentences)]
    chosen = sorted(index for count, index in sorted(overlap, key=lambda p: (-p[0], p[1]))[:limit] if count > 0)
    quote = " ".join(sentences[index] for index in chosen) if chosen else sentences[0]
    return quote if len(quote) <= max_chars else quote[: max_chars - 1].rstrip() + "…"


def matches(node: Mapping[str, Any], attributes: Attributes) -> bool:
    """Whether ``attributes`` pass the (validated) comparison or compound filter ``node``.

    A missing attribute fails every comparison except ``ne`` and ``nin``; values of different types
    are never equal and never ordered (a boolean is not the number 1).
    """
    kind = node["type"]
    if kind == "and":
        return all(matches(child, attributes) for child in node["filters"])
    if kind == "or":
        return any(matches(child, attributes) for child in node["filters"])
    key, operand = node["key"], node["value"]
    if key not in attributes:
        return kind in ("ne", "nin")
    actual = attributes[key]
    if kind == "eq":
        return _equal(actual, operand)
    if kind == "ne":
        return not _equal(actual, operand)
    if kind == "in":
        return any(_equal(actual, candidate) for candidate in operand)
    if kind == "nin":
        return not any(_equal(actual, candidate) for candidate in operand)
    order = _compare(actual, operand)
    if order is None:
        return False
    return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[kind]


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "other"


def _equal(left: object, right: object) -> bool:
    return _kind(left) == _kind(right) and left == right


def _compare(left: Any, right: Any) -> int | None:
    if _kind(left) != _kind(right) or _kind(left) not in ("number", "string"):
        return None
    return int(left > right) - int(left < right)


def _normalise(score: float) -> float:
    """Squash an unbounded BM25 score into [0, 1) monotonically."""
    return round(score / (score + 1.0), 4)


def _stem(word: str) -> str:
    """A light suffix stripper, so "returns"/"returned"/"returning" meet "return"."""
    if word.endswith("sses"):
        return word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    for suffix in ("ing", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith(("ss", "us", "is")):
            return word[: -len(suffix)]
    return word
