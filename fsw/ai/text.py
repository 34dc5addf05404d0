"""Text on board: a WordPiece tokenizer, sentence embeddings, ranking a catalogue by a query.

The text encoder (all-MiniLM-L6-v2 as a ``.gnm``, ``gnomon model build minilm``) carries
its vocabulary inside its checksummed arena (tensor ``tokenizer.vocab``), so the flight
needs no tokenizer package and a flipped bit in the vocabulary is scrubbed like a weight.
:class:`WordPiece` reproduces the BERT uncased tokenizer (``tokenizers``' BertNormalizer,
BertPreTokenizer and WordPiece; tested token for token against it).

>>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "battery", "low", "##er", ",", "temp"]
>>> wp = WordPiece(vocab)
>>> wp.tokenize("Battery LOWER, temp!")
[4, 5, 6, 7, 8, 1]
>>> wp.encode(["battery low", "temp"]).tolist()
[[2, 4, 5, 3], [2, 8, 3, 0]]

:class:`TextEncoder` embeds texts with a loaded runtime; :class:`Catalogue` keeps records
(stored products, files, events, log lines) with their embeddings, computed by
:meth:`Catalogue.embed_pending` as a budgeted job, and :meth:`Catalogue.search` ranks
them by cosine similarity to a query.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from fsw.ai.errors import AiError

if TYPE_CHECKING:
    from fsw.ai.runtime import Runtime

MAX_CHARS_PER_WORD = 100  # longer words become [UNK] (BERT)


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class WordPiece:
    """The BERT uncased tokenizer over ``vocab`` (one token per line of ``vocab.txt``)."""

    def __init__(
        self,
        vocab: Sequence[str],
        *,
        lowercase: bool = True,
        unk: str = "[UNK]",
        cls: str = "[CLS]",
        sep: str = "[SEP]",
        pad: str = "[PAD]",
    ) -> None:
        self.ids = {tok: i for i, tok in enumerate(vocab)}
        try:
            self.unk_id, self.cls_id = self.ids[unk], self.ids[cls]
            self.sep_id, self.pad_id = self.ids[sep], self.ids[pad]
        except KeyError as e:
            raise AiError(f"vocabulary lacks the special token {e}") from None
        self.lowercase = lowercase
        self.size = len(vocab)

    @classmethod
    def from_vocab_bytes(cls, raw: bytes, *, lowercase: bool = True) -> WordPiece:
        """From the bytes of a ``vocab.txt`` (UTF-8, one token per line)."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise AiError(f"vocabulary is not UTF-8 (byte {e.start})") from None
        return cls(
            text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), lowercase=lowercase
        )

    def normalize(self, text: str) -> str:
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_whitespace(ch):
                out.append(" ")
            elif _is_cjk(cp):
                out.append(f" {ch} ")
            else:
                out.append(ch)
        s = "".join(out)
        if self.lowercase:
            s = unicodedata.normalize("NFD", s)
            s = "".join(c for c in s if unicodedata.category(c) != "Mn").lower()
        return s

    def _words(self, text: str) -> list[str]:
        words: list[str] = []
        for chunk in self.normalize(text).split():
            cur = ""
            for ch in chunk:
                if _is_punctuation(ch):
                    if cur:
                        words.append(cur)
                        cur = ""
                    words.append(ch)
                else:
                    cur += ch
            if cur:
                words.append(cur)
        return words

    def _pieces(self, word: str) -> list[int]:
        if len(word) > MAX_CHARS_PER_WORD:
            return [self.unk_id]
        out, start = [], 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.ids:
                    found = self.ids[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            out.append(found)
            start = end
        return out

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` without [CLS]/[SEP]."""
        return [i for w in self._words(text) for i in self._pieces(w)]

    def encode(self, texts: Sequence[str], max_tokens: int = 128) -> torch.Tensor:
        """(N, T) int64 ids: [CLS] tokens [SEP], truncated to ``max_tokens``, padded with 0."""
        if max_tokens < 2:
            raise AiError(f"max_tokens must be >= 2, got {max_tokens}")
        rows = [[self.cls_id, *self.tokenize(t)[: max_tokens - 2], self.sep_id] for t in texts]
        width = max((len(r) for r in rows), default=2)
        out = torch.full((len(rows), width), self.pad_id, dtype=torch.int64)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
        return out


class TextEncoder:
    """Sentence embeddings from a text-encoder runtime (L2-normalised, float32).

    The tokenizer is read from the runtime's arena once at construction; build a new
    encoder after a repair of the vocabulary blocks (the scrubber reports them).
    """

    def __init__(self, rt: Runtime, *, batch: int = 32) -> None:
        if not rt.text:
            raise AiError(f"model {rt.name!r} is not a text encoder")
        tok = dict(rt.graph.meta.get("tokenizer", {}))
        raw = bytes(rt.tensor(str(tok.get("vocab", "tokenizer.vocab"))).numpy().tobytes())
        self.rt = rt
        self.tokenizer = WordPiece.from_vocab_bytes(raw, lowercase=bool(tok.get("lowercase", True)))
        self.max_tokens = int(tok.get("max_tokens", 128))
        self.batch = batch
        self.dim = int(rt.graph.meta.get("embedding_dim", 0))

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, D) embeddings, ``batch`` texts per inference (sorted by length to pad less)."""
        if not texts:
            return torch.zeros(0, self.dim)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[torch.Tensor] = [torch.empty(0)] * len(texts)
        for lo in range(0, len(order), self.batch):
            idx = order[lo : lo + self.batch]
            ids = self.tokenizer.encode([texts[i] for i in idx], self.max_tokens)
            emb = self.rt.infer(ids)
            for j, i in enumerate(idx):
                out[i] = emb[j]
        return torch.stack(out)


@dataclass(slots=True, frozen=True)
class Record:
    """One catalogue entry: a stored product, file, event or log line, by its text."""

    key: str
    kind: str  # "product" | "file" | "event" | "log" | ...
    text: str


@dataclass(slots=True, frozen=True)
class Hit:
    """One search result."""

    key: str
    kind: str
    score: float  # cosine similarity, -1..1
    text: str


class Catalogue:
    """Records and their embeddings; new records wait until :meth:`embed_pending` runs.

    >>> cat = Catalogue()
    >>> cat.add(Record("f1", "file", "thermal image of the north pole"))
    >>> cat.pending
    1
    """

    def __init__(self) -> None:
        self._records: list[Record] = []
        self._keys: dict[str, int] = {}
        self._emb: list[torch.Tensor | None] = []
        self.embedded = 0

    def __len__(self) -> int:
        return len(self._records)

    @property
    def pending(self) -> int:
        """Records whose embedding is not computed yet."""
        return sum(e is None for e in self._emb)

    def add(self, record: Record) -> None:
        """Add (or replace, by key) a record; its embedding becomes pending."""
        if record.key in self._keys:
            i = self._keys[record.key]
            self._records[i], self._emb[i] = record, None
            return
        self._keys[record.key] = len(self._records)
        self._records.append(record)
        self._emb.append(None)

    def extend(self, records: Iterable[Record]) -> None:
        for r in records:
            self.add(r)

    def embed_pending(self, encoder: TextEncoder, max_records: int | None = None) -> int:
        """The embedding job: embed up to ``max_records`` pending records; how many it did.

        The power scheduler budgets this job class like any inference: each call is one
        bounded unit of work (``max_records`` texts, ``encoder.batch`` per inference).
        """
        todo = [i for i, e in enumerate(self._emb) if e is None]
        if max_records is not None:
            todo = todo[: max(0, max_records)]
        if not todo:
            return 0
        emb = encoder.embed([self._records[i].text for i in todo])
        for j, i in enumerate(todo):
            self._emb[i] = emb[j]
        self.embedded += len(todo)
        return len(todo)

    def search(
        self, query: torch.Tensor, k: int = 5, kinds: Iterable[str] | None = None
    ) -> list[Hit]:
        """The ``k`` embedded records most similar to ``query`` (a (D,) embedding), best first.

        Ties break by insertion order, so results are deterministic. Pending records are
        not searched (:attr:`pending` says how many).
        """
        if k < 1:
            raise AiError(f"k must be >= 1, got {k}")
        want = None if kinds is None else set(kinds)
        idx = [
            i
            for i, e in enumerate(self._emb)
            if e is not None and (want is None or self._records[i].kind in want)
        ]
        if not idx:
            return []
        mat = torch.stack([self._emb[i] for i in idx])  # type: ignore[misc]
        q = torch.nn.functional.normalize(query.float().reshape(-1), dim=0)
        scores = torch.nn.functional.normalize(mat, dim=1) @ q
        order = sorted(range(len(idx)), key=lambda j: (-float(scores[j]), idx[j]))[:k]
        return [
            Hit(
                self._records[idx[j]].key,
                self._records[idx[j]].kind,
                float(scores[j]),
                self._records[idx[j]].text,
            )
            for j in order
        ]

    def query(self, encoder: TextEncoder, text: str, k: int = 5) -> list[Hit]:
        """Embed ``text`` and :meth:`search` (the uplinked natural-language query)."""
        return self.search(encoder.embed([text])[0], k)


__all__ = ["Catalogue", "Hit", "Record", "TextEncoder", "WordPiece"]
