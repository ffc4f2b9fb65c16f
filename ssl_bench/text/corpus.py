"""Corpora as lists of documents, the held-out split (by document) and sequence packing.

A document is a string; its sentences are its non-blank lines (as in RoBERTa's preprocessing,
one sentence per line, documents separated by blank lines). Packing is a pure function of token
ids (``pack``), so it is tested on synthetic ids.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

from ssl_bench.errors import DataError

_BLANK_LINE = re.compile(r"\n(?:[ \t\r\f\v]*\n)+")


class CorpusMissing(DataError, FileNotFoundError):
    """A corpus path that does not exist (or a folder without matching files)."""


class CorpusUnreadable(DataError, ValueError):
    """A corpus that cannot be used: not UTF-8 text, binary, empty, or too few documents."""


def embedded_documents() -> list[str]:
    """The embedded default corpus: Python's own documentation topics (``pydoc_data``), shipped
    with every CPython; one topic = one document (79 documents, ~0.46 M characters on 3.11)."""
    try:
        from pydoc_data.topics import topics
    except ImportError as err:  # some distributions strip it
        raise CorpusMissing(
            "data=text_embedded needs the pydoc_data module of the Python standard library, which this "
            "Python lacks; use data=text_files data.paths=[...] instead"
        ) from err
    return [topics[k] for k in sorted(topics) if topics[k].strip()]


def split_documents(text: str) -> list[str]:
    """Blank-line separated documents of one file."""
    return [d for d in _BLANK_LINE.split(text.replace("\r\n", "\n")) if d.strip()]


def read_text_files(paths: Sequence[str], documents: str = "blank_line", pattern: str = "**/*.txt") -> list[str]:
    """Documents from files and folders (folders: every file matching ``pattern``, sorted).

    ``documents``: ``file`` (one document per file) or ``blank_line`` (blank-line separated
    documents within each file). Missing paths and non-UTF-8 files raise with the path named.
    """
    if not paths:
        raise CorpusMissing("data.paths is empty: give data.paths=[FILE_OR_FOLDER,...]")
    files: list[Path] = []
    for p in map(Path, paths):
        p = p.expanduser()
        if p.is_dir():
            found = sorted(f for f in p.glob(pattern) if f.is_file())
            if not found:
                raise CorpusMissing(f"data.paths: folder {p} holds no file matching {pattern!r} (data.pattern)")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise CorpusMissing(
                f"data.paths: no such file or folder: {p} (relative paths start at the launch folder {Path.cwd()})"
            )
    docs: list[str] = []
    for f in files:
        try:
            raw = f.read_bytes()
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorpusUnreadable(f"data.paths: {f} is not UTF-8 text ({err.reason} at byte {err.start})") from None
        except OSError as err:
            raise CorpusUnreadable(f"data.paths: cannot read {f}: {err.strerror or err}") from None
        if b"\x00" in raw:
            raise CorpusUnreadable(f"data.paths: {f} is binary (NUL bytes at byte {raw.index(0)}), not text")
        if documents == "file":
            docs += [text] if text.strip() else []
        elif documents == "blank_line":
            docs += split_documents(text)
        else:
            raise CorpusUnreadable(f"data.documents={documents!r}; allowed: blank_line, file")
    if not docs:
        raise CorpusUnreadable(f"data.paths: {', '.join(map(str, paths))} hold no text (empty or blank files)")
    return docs


def heldout_split(docs: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, held-out) by document: documents in a seeded random order go to the held-out split
    until it holds ``fraction`` of the characters. Both splits keep the corpus order."""
    if len(docs) < 2:
        raise CorpusUnreadable(
            f"the corpus has {len(docs)} document(s); a held-out split needs at least 2 "
            "(documents are separated by blank lines, data.documents=blank_line, or are whole "
            "files, data.documents=file)"
        )
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    total, held, chosen = sum(map(len, docs)), 0, set()
    for i in order:
        if held >= fraction * total or len(chosen) == len(docs) - 1:
            break
        chosen.add(i)
        held += len(docs[i])
    return [d for i, d in enumerate(docs) if i not in chosen], [d for i, d in enumerate(docs) if i in chosen]


def sentences(doc: str) -> list[str]:
    """A document's sentences: its non-blank lines, without the line break."""
    return [line for line in doc.splitlines() if line.strip()]


def pack(docs: Sequence[Sequence[Sequence[int]]], max_length: int, mode: str, bos: int, eos: int) -> list[list[int]]:
    """Pack tokenised documents (lists of sentences of ids) into ``<s> ... </s>`` sequences of at
    most ``max_length`` ids.

    ``full_sentences``: whole sentences, contiguous, crossing document boundaries with an extra
    ``</s>`` between documents; a sequence is closed when the next sentence does not fit
    (RoBERTa FULL-SENTENCES). ``doc_sentences``: the same, but a sequence never crosses a
    document boundary (DOC-SENTENCES; sequences near a document's end are shorter). A sentence
    longer than a whole sequence is cut into pieces.
    """
    if mode not in ("full_sentences", "doc_sentences"):
        raise ValueError(f"data.packing={mode!r}; allowed: full_sentences, doc_sentences")
    cap = max_length - 2
    if cap < 1:
        raise ValueError(f"data.max_length={max_length} leaves no room between <s> and </s>")
    out: list[list[int]] = []
    cur: list[int] = []
    separate = False

    def flush() -> None:
        nonlocal cur, separate
        if cur:
            out.append([bos, *cur, eos])
        cur, separate = [], False

    for doc in docs:
        if mode == "doc_sentences":
            flush()
        elif cur:
            separate = True
        for sent in doc:
            for start in range(0, len(sent), cap):
                piece = sent[start : start + cap]
                if not piece:
                    continue
                if len(cur) + separate + len(piece) > cap:
                    flush()
                if separate:
                    cur.append(eos)
                    separate = False
                cur.extend(piece)
    flush()
    return out
