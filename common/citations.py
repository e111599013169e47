"""Quotes a reader can check: for each ``file_citation`` of an answer, the shortest passage (at most
:data:`MAX_SENTENCES` sentences) of a retrieved chunk *of the cited file* that best supports
the answer's sentence ending at the citation's position.

Support is word overlap (lower-cased words, common words ignored): the passage that covers most of
the claim's words wins, then the one with the fewest words the claim does not use, then the shorter.
Every quote is a slice of its chunk and is checked to occur in it verbatim. A citation whose file
has no retrieved chunk, or whose chunks share no word with the claim, keeps its document with
``quote: None``. Citations of the same passage are merged into one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_SENTENCES = 3
MIN_CLAIM_WORDS = 3
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)", re.MULTILINE)
_DOCUMENT_PREFIX = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})__")
_COMMON = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were with "
    "based documents document".split())


@dataclass(frozen=True)
class CitedPassage:
    """A citation as the answer shows it (no OpenAI file id: D8)."""

    document_id: str | None
    name: str
    quote: str | None
    score: float | None
    index: int

    def as_json(self) -> dict[str, object]:
        return {"document_id": self.document_id, "name": self.name, "quote": self.quote, "score": self.score,
                "index": self.index}


@dataclass(frozen=True)
class _Chunk:
    document_id: str | None
    file_id: str
    text: str
    score: float


def provisional_citation(filename: str, index: int) -> dict[str, object]:
    """A citation as it arrives in the stream, before it can be quoted (the quote needs the whole
    answer and the retrieved chunks, which come with the final response): the document named by the
    file's name (``<document_id>__<name>``, never the OpenAI file id), ``quote`` and ``score`` null."""
    match = _DOCUMENT_PREFIX.match(filename)
    return {"document_id": match.group(1) if match else None, "name": _DOCUMENT_PREFIX.sub("", filename),
            "quote": None, "score": None, "index": index}


def words(text: str) -> set[str]:
    """The words of ``text`` that carry meaning: lower-cased, common words dropped."""
    return {w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _COMMON and len(w) > 1}


def claim_before(answer: str, index: int, previous: int = 0) -> str:
    """The sentence of ``answer`` that ends at ``index`` (a citation's position), not reaching back past
    the previous citation or the line's start; sentences before it are added while it has fewer than
    :data:`MIN_CLAIM_WORDS` meaningful words (at most :data:`MAX_SENTENCES` in all)."""
    index = max(0, min(index, len(answer)))
    start = max(previous, answer.rfind("\n", 0, max(index - 1, 0)) + 1)
    sentences = [m.group(0).strip() for m in _SENTENCE.finditer(answer[start:index]) if m.group(0).strip()]
    claim: list[str] = []
    for sentence in reversed(sentences):
        claim.insert(0, sentence)
        if len(words(" ".join(claim))) >= MIN_CLAIM_WORDS or len(claim) == MAX_SENTENCES:
            break
    return " ".join(claim)


def best_passage(chunk_text: str, claim: str) -> tuple[str, float] | None:
    """The shortest window of 1..MAX_SENTENCES consecutive sentences of ``chunk_text`` that best
    covers ``claim``, with its coverage (0..1]; None when no sentence shares a word with the claim."""
    wanted = words(claim)
    if not wanted:
        return None
    spans = [(m.start(), m.end()) for m in _SENTENCE.finditer(chunk_text) if m.group(0).strip()]
    best: tuple[tuple[float, int, int], str] | None = None
    for first in range(len(spans)):
        for last in range(first, min(first + MAX_SENTENCES, len(spans))):
            passage = chunk_text[spans[first][0]:spans[last][1]].strip()
            have = words(passage)
            covered = len(wanted & have)
            if covered == 0:
                continue
            key = (covered / len(wanted), -len(have - wanted), -len(passage))
            if best is None or key > best[0]:
                best = (key, passage)
    if best is None:
        return None
    passage = best[1]
    if passage not in chunk_text:  # a slice always is; the check guards the promise made to readers
        return None
    return passage, best[0][0]


def quote_citations(answer: str, citations: Iterable[object], retrieved: Sequence[object]) -> list[CitedPassage]:
    """Each citation (``document_id``, ``file_id``, ``filename``, ``index``) with its quote from the
    retrieved chunks (``document_id``, ``file_id``, ``text``, ``score``); duplicates merged, in answer order."""
    chunks = [_Chunk(getattr(c, "document_id"), getattr(c, "file_id"), getattr(c, "text"),
                     float(getattr(c, "score") or 0.0)) for c in retrieved]
    ordered = sorted(citations, key=lambda c: getattr(c, "index"))
    out: list[CitedPassage] = []
    seen: set[tuple[str | None, str | None]] = set()
    previous = 0
    for citation in ordered:
        index = int(getattr(citation, "index"))
        claim = claim_before(answer, index, previous)
        previous = index
        file_id = getattr(citation, "file_id")
        document_id = getattr(citation, "document_id")
        found: tuple[float, str, _Chunk] | None = None
        for chunk in chunks:
            if chunk.file_id != file_id:
                continue
            passage = best_passage(chunk.text, claim)
            if passage is not None and (found is None or (passage[1], -len(passage[0])) > (found[0], -len(found[1]))):
                found = (passage[1], passage[0], chunk)
        quote = found[1] if found else None
        if found and document_id is None:
            document_id = found[2].document_id
        key = (document_id, quote)
        if key in seen:
            continue
        seen.add(key)
        out.append(CitedPassage(document_id=document_id, name=_DOCUMENT_PREFIX.sub("", str(getattr(citation, "filename"))), quote=quote,
                                score=found[2].score if found else None, index=index))
    return out
