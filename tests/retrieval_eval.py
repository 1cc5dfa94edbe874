"""Retrieval quality for the agent's memory: recall@5 and MRR for keyword, vector and hybrid search.

Library
-------
``evaluate(search, queries)`` takes any ``search(query, mode, k) -> [document ids in
rank order]`` and scores it on ``tests/data/retrieval/queries.jsonl``.  Two search
implementations are included:

* ``LocalReference`` - pure Python: BM25 keyword scoring over light-stemmed terms
  (a chunk must contain at least two distinct query terms), cosine similarity over
  the fake embeddings of ``harness.embedding_model``, and reciprocal-rank fusion
  (k=60) of the top 50 of each.  It shows what the corpus and the embedding model
  should give, without the worker.
* ``HttpMemory`` - the worker's memory API (``PUT /api/memory/{ns}/documents/{id}``,
  ``POST /api/memory/{ns}/search``) with a bearer token.

Metrics are document-level: a search may return several chunks of one document;
only the first counts.  A query's rank is the position of its first relevant
document among the distinct documents returned (up to ``depth``, 10 by default).

* recall@5 - share of a query's relevant documents among its first 5 documents,
  averaged over queries;
* MRR - mean of 1/rank (0 when no relevant document is within ``depth``).

CLI
---
    python tests/retrieval_eval.py                                  # local reference
    python tests/retrieval_eval.py --per-query                      # and each query's ranks
    python tests/retrieval_eval.py --embeddings-url http://127.0.0.1:PORT/v1
    python tests/retrieval_eval.py --http http://127.0.0.1:8787 --token tok-alice \\
        --namespace eval --load                                     # the real worker

``--min-margin X`` makes the exit status 1 unless hybrid beats both other modes by at
least X on recall@5 and on MRR.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence
from urllib.parse import quote

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from harness import embedding_model  # noqa: E402

DATA_DIR = TESTS_DIR / "data" / "retrieval"
DOCUMENTS_PATH = DATA_DIR / "documents.jsonl"
QUERIES_PATH = DATA_DIR / "queries.jsonl"

MODES = ("keyword", "vector", "hybrid")
KINDS = ("exact", "paraphrase", "mixed")
RRF_K = 60
RECALL_AT = 5
DEFAULT_DEPTH = 10

SearchFn = Callable[[str, str, int], Sequence[str]]


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_documents(path: Path = DOCUMENTS_PATH) -> list[dict]:
    return _read_jsonl(path)


def load_queries(path: Path = QUERIES_PATH) -> list[dict]:
    return _read_jsonl(path)


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


def distinct(ids: Iterable[str]) -> list[str]:
    """Document ids in first-seen order (several chunks of a document count once)."""
    seen: set[str] = set()
    out = []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def first_rank(ranked: Sequence[str], relevant: Iterable[str], depth: int = DEFAULT_DEPTH) -> Optional[int]:
    """1-based rank of the first relevant document among the first ``depth`` distinct ones."""
    rel = set(relevant)
    for pos, doc_id in enumerate(distinct(ranked)[:depth], 1):
        if doc_id in rel:
            return pos
    return None


def recall_at(ranked: Sequence[str], relevant: Iterable[str], n: int = RECALL_AT) -> float:
    rel = set(relevant)
    if not rel:
        return 0.0
    return len(rel & set(distinct(ranked)[:n])) / len(rel)


@dataclass
class QueryResult:
    query: str
    kind: str
    relevant: list[str]
    ranked: list[str]
    rank: Optional[int]
    recall: float

    @property
    def rr(self) -> float:
        return 1.0 / self.rank if self.rank else 0.0


@dataclass
class Scores:
    recall: float
    mrr: float
    n: int


@dataclass
class ModeReport:
    mode: str
    results: list[QueryResult] = field(default_factory=list)
    seconds: float = 0.0

    def scores(self, kind: Optional[str] = None) -> Scores:
        rows = [r for r in self.results if kind is None or r.kind == kind]
        if not rows:
            return Scores(0.0, 0.0, 0)
        return Scores(sum(r.recall for r in rows) / len(rows), sum(r.rr for r in rows) / len(rows), len(rows))

    @property
    def recall(self) -> float:
        return self.scores().recall

    @property
    def mrr(self) -> float:
        return self.scores().mrr


@dataclass
class Report:
    modes: dict[str, ModeReport]
    depth: int

    def margins(self) -> dict[str, float]:
        """How far hybrid is ahead of the better of the other modes, per metric."""
        h = self.modes["hybrid"]
        others = [m for name, m in self.modes.items() if name != "hybrid"]
        return {
            "recall": h.recall - max(m.recall for m in others),
            "mrr": h.mrr - max(m.mrr for m in others),
        }

    def to_json(self) -> dict:
        out: dict = {"depth": self.depth, "recall_at": RECALL_AT, "modes": {}}
        for name, m in self.modes.items():
            out["modes"][name] = {
                "recall_at_5": round(m.recall, 4),
                "mrr": round(m.mrr, 4),
                "by_kind": {
                    k: {"recall_at_5": round(s.recall, 4), "mrr": round(s.mrr, 4), "queries": s.n}
                    for k in KINDS
                    for s in [m.scores(k)]
                    if s.n
                },
                "seconds": round(m.seconds, 3),
            }
        if "hybrid" in self.modes and len(self.modes) > 1:
            out["hybrid_margin"] = {k: round(v, 4) for k, v in self.margins().items()}
        return out


def evaluate(
    search: SearchFn,
    queries: Sequence[dict],
    modes: Sequence[str] = MODES,
    k: int = DEFAULT_DEPTH,
    depth: int = DEFAULT_DEPTH,
) -> Report:
    """Run every query in every mode through ``search`` and score the rankings."""
    report = Report({}, depth)
    for mode in modes:
        mr = ModeReport(mode)
        start = time.perf_counter()
        for q in queries:
            ranked = list(search(q["query"], mode, k))
            mr.results.append(
                QueryResult(
                    query=q["query"],
                    kind=q.get("kind", "?"),
                    relevant=list(q["relevant"]),
                    ranked=distinct(ranked),
                    rank=first_rank(ranked, q["relevant"], depth),
                    recall=recall_at(ranked, q["relevant"]),
                )
            )
        mr.seconds = time.perf_counter() - start
        report.modes[mode] = mr
    return report


def format_table(report: Report, title: str = "") -> str:
    names = list(report.modes)
    kinds = [k for k in KINDS if any(report.modes[n].scores(k).n for n in names)]
    header = ["mode", f"recall@{RECALL_AT}", f"MRR@{report.depth}"]
    for k in kinds:
        n = report.modes[names[0]].scores(k).n
        header += [f"{k} R@{RECALL_AT} (n={n})", f"{k} MRR"]
    rows = [header]
    for name in names:
        m = report.modes[name]
        row = [name, f"{m.recall:.3f}", f"{m.mrr:.3f}"]
        for k in kinds:
            s = m.scores(k)
            row += [f"{s.recall:.3f}", f"{s.mrr:.3f}"]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    if title:
        lines.append(title)
    n_queries = len(report.modes[names[0]].results)
    lines.append(f"{n_queries} queries")
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    if "hybrid" in report.modes and len(names) > 1:
        mg = report.margins()
        lines.append(f"hybrid ahead of the best other mode by {mg['recall']:+.3f} recall@{RECALL_AT}, {mg['mrr']:+.3f} MRR")
    return "\n".join(lines)


def format_per_query(report: Report) -> str:
    names = list(report.modes)
    lines = ["rank of the first relevant document per mode ('-' = not in the first %d)" % report.depth]
    lines.append("  ".join(n[:7].rjust(7) for n in names) + "  kind        query")
    for i, base in enumerate(report.modes[names[0]].results):
        ranks = [report.modes[n].results[i].rank for n in names]
        cells = [(str(r) if r else "-").rjust(7) for r in ranks]
        lines.append("  ".join(cells) + f"  {base.kind:<10}  {base.query}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Local reference search
# ---------------------------------------------------------------------------


def chunk_text(text: str, max_words: Optional[int]) -> list[str]:
    """Split a Markdown body into chunks of at most about ``max_words`` words.

    Paragraphs (blank-line separated) are packed greedily; a paragraph longer than
    the limit becomes its own chunk.  ``None`` keeps the document whole.
    """
    if not max_words:
        return [text]
    chunks: list[str] = []
    current: list[str] = []
    count = 0
    for para in [p for p in text.split("\n\n") if p.strip()]:
        n = len(para.split())
        if current and count + n > max_words:
            chunks.append("\n\n".join(current))
            current, count = [], 0
        current.append(para)
        count += n
    if current:
        chunks.append("\n\n".join(current))
    return chunks or [text]


@dataclass
class _Chunk:
    doc_id: str
    index: int
    text: str
    terms: dict[str, int]
    length: int
    vector: list[float]


EmbedFn = Callable[[list[str]], list[list[float]]]


class LocalReference:
    """An in-memory stand-in for the worker's memory search.

    * keyword: BM25 (k1=1.2, b=0.75) over stemmed, stop-word-filtered terms of the
      title and text.  A chunk is a candidate when it contains at least
      ``min(min_match, number of distinct query terms)`` distinct query terms:
      ``min_match=1`` is a plain OR, a large value is AND, and the default 2
      ("minimum should match") keeps one stray common word from dragging in a
      chunk, which matters a lot once the list is fused.
      ``stem`` and ``stopwords`` apply to the keyword side only (the embedding has
      its own); pass e.g. a Porter stemmer to mimic SQLite's ``porter`` tokenizer.
    * vector: cosine similarity between the query embedding and chunk embeddings.
    * hybrid: reciprocal-rank fusion, ``sum 1/(60 + rank)`` over the first
      ``candidates`` chunks of each list.

    Every chunk is indexed as ``title + "\\n\\n" + chunk text``.
    """

    def __init__(
        self,
        documents: Sequence[dict],
        dimensions: int = embedding_model.DEFAULT_DIMENSIONS,
        chunk_words: Optional[int] = None,
        candidates: int = 50,
        min_match: int = 2,
        stem: Callable[[str], str] = embedding_model.stem,
        stopwords: Iterable[str] = embedding_model.STOPWORDS,
        embed_many: Optional[EmbedFn] = None,
        k1: float = 1.2,
        b: float = 0.75,
    ):
        if min_match < 1:
            raise ValueError("min_match must be at least 1")
        self.dimensions = dimensions
        self.candidates = candidates
        self.min_match = min_match
        self._stem = stem
        self._stopwords = frozenset(stopwords)
        self._embed_many = embed_many or (lambda texts: [embedding_model.embed(t, dimensions) for t in texts])
        self.k1, self.b = k1, b
        self.chunks: list[_Chunk] = []
        texts = []
        for doc in documents:
            for i, piece in enumerate(chunk_text(doc["text"], chunk_words)):
                full = f"{doc.get('title', '')}\n\n{piece}".strip()
                counts: dict[str, int] = {}
                for t in self._terms(full):
                    counts[t] = counts.get(t, 0) + 1
                self.chunks.append(_Chunk(doc["id"], i, full, counts, sum(counts.values()), []))
                texts.append(full)
        vectors = self._embed_many(texts)
        for chunk, vec in zip(self.chunks, vectors):
            chunk.vector = vec
        self.n = len(self.chunks)
        self.avg_len = sum(c.length for c in self.chunks) / max(1, self.n)
        self.df: dict[str, int] = {}
        for c in self.chunks:
            for t in c.terms:
                self.df[t] = self.df.get(t, 0) + 1

    def _terms(self, text: str) -> list[str]:
        return [self._stem(t) for t in embedding_model.tokenize(text) if t not in self._stopwords]

    # -- the three rankings, at chunk level --------------------------------

    def keyword_ranking(self, query: str) -> list[tuple[int, float]]:
        q = list(dict.fromkeys(self._terms(query)))
        if not q:
            return []
        need = min(self.min_match, len(q))
        scored = []
        for idx, c in enumerate(self.chunks):
            present = [t for t in q if t in c.terms]
            if len(present) < need:
                continue
            score = 0.0
            for t in present:
                df = self.df[t]
                idf = math.log(1.0 + (self.n - df + 0.5) / (df + 0.5))
                tf = c.terms[t]
                score += idf * tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * c.length / self.avg_len))
            scored.append((idx, score))
        scored.sort(key=lambda p: (-p[1], p[0]))
        return scored

    def vector_ranking(self, query: str) -> list[tuple[int, float]]:
        qv = self._embed_many([query])[0]
        scored = [(idx, sum(a * b for a, b in zip(qv, c.vector))) for idx, c in enumerate(self.chunks)]
        scored.sort(key=lambda p: (-p[1], p[0]))
        return scored

    def hybrid_ranking(self, query: str) -> list[tuple[int, float]]:
        fused: dict[int, float] = {}
        best: dict[int, int] = {}
        for ranking in (self.keyword_ranking(query), self.vector_ranking(query)):
            for rank, (idx, _) in enumerate(ranking[: self.candidates], 1):
                fused[idx] = fused.get(idx, 0.0) + 1.0 / (RRF_K + rank)
                best[idx] = min(best.get(idx, rank), rank)
        return sorted(fused.items(), key=lambda p: (-p[1], best[p[0]], p[0]))

    def search_chunks(self, query: str, mode: str, k: int) -> list[dict]:
        ranking = {"keyword": self.keyword_ranking, "vector": self.vector_ranking, "hybrid": self.hybrid_ranking}[mode](query)
        return [
            {"document_id": self.chunks[i].doc_id, "chunk_index": self.chunks[i].index, "score": s} for i, s in ranking[:k]
        ]

    def search(self, query: str, mode: str, k: int) -> list[str]:
        """Document ids of the best ``k`` distinct documents (the ``SearchFn`` contract)."""
        ranking = {"keyword": self.keyword_ranking, "vector": self.vector_ranking, "hybrid": self.hybrid_ranking}[mode](query)
        return distinct(self.chunks[i].doc_id for i, _ in ranking)[:k]


def http_embedder(base_url: str, api_key: str = "test-openai-key", model: str = "text-embedding-3-small", dimensions: Optional[int] = None, batch: int = 256) -> EmbedFn:
    """An ``embed_many`` that calls an OpenAI-compatible ``/embeddings`` endpoint (``base_url`` ends in ``/v1``)."""
    import httpx

    def embed_many(texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        with httpx.Client(timeout=60) as client:
            for start in range(0, len(texts), batch):
                body: dict = {"model": model, "input": texts[start : start + batch], "encoding_format": "float"}
                if dimensions:
                    body["dimensions"] = dimensions
                resp = client.post(f"{base_url.rstrip('/')}/embeddings", json=body, headers={"Authorization": f"Bearer {api_key}"})
                resp.raise_for_status()
                data = sorted(resp.json()["data"], key=lambda d: d["index"])
                out.extend(d["embedding"] for d in data)
        return out

    return embed_many


# ---------------------------------------------------------------------------
# The worker's memory API
# ---------------------------------------------------------------------------


class HttpMemory:
    """Client for the worker's memory API.

    ``PUT  {base}/api/memory/{namespace}/documents/{doc_id}``  body ``{"title","text","metadata"}``
    ``POST {base}/api/memory/{namespace}/search``              body ``{"query","k","mode"}``
    -> ``{"results": [{"document_id", "chunk_index", "score", ...}]}``
    """

    def __init__(self, base_url: str, token: str, namespace: str, timeout: float = 60.0, overfetch: int = 3, max_k: int = 50):
        import httpx

        self.base_url = base_url.rstrip("/")
        self.namespace = namespace
        self.overfetch = overfetch
        self.max_k = max_k
        self._client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "HttpMemory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _url(self, *parts: str) -> str:
        return "/".join([self.base_url, "api", "memory", quote(self.namespace, safe="")] + [quote(p, safe="") for p in parts])

    def put_document(self, doc: dict) -> dict:
        body = {"title": doc.get("title", ""), "text": doc["text"], "metadata": doc.get("metadata") or {}}
        resp = self._client.put(self._url("documents", doc["id"]), json=body)
        if resp.status_code >= 300:
            raise RuntimeError(f"PUT {doc['id']}: HTTP {resp.status_code}: {resp.text[:300]}")
        return resp.json() if resp.content else {}

    def load(self, documents: Iterable[dict], progress: Optional[Callable[[int], None]] = None) -> int:
        n = 0
        for n, doc in enumerate(documents, 1):
            self.put_document(doc)
            if progress:
                progress(n)
        return n

    def search_results(self, query: str, mode: str, k: int) -> list[dict]:
        resp = self._client.post(self._url("search"), json={"query": query, "k": k, "mode": mode})
        if resp.status_code != 200:
            raise RuntimeError(f"search ({mode}): HTTP {resp.status_code}: {resp.text[:300]}")
        return list(resp.json().get("results") or [])

    def search(self, query: str, mode: str, k: int) -> list[str]:
        """Distinct document ids; asks for ``k * overfetch`` chunks so k documents usually come back."""
        results = self.search_results(query, mode, min(self.max_k, k * self.overfetch))
        return distinct(r["document_id"] for r in results)[:k]


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Measure keyword, vector and hybrid retrieval on the test corpus.")
    parser.add_argument("--documents", type=Path, default=DOCUMENTS_PATH)
    parser.add_argument("--queries", type=Path, default=QUERIES_PATH)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of keyword,vector,hybrid")
    parser.add_argument("--depth", type=int, default=DEFAULT_DEPTH, help="documents considered for MRR (default 10)")
    parser.add_argument("--kind", choices=KINDS, help="only queries of this kind")
    ref = parser.add_argument_group("local reference")
    ref.add_argument("--dimensions", type=int, default=embedding_model.DEFAULT_DIMENSIONS)
    ref.add_argument("--chunk-words", type=int, default=None, help="split documents into chunks of about N words")
    ref.add_argument("--candidates", type=int, default=50, help="chunks taken from each list for fusion (default 50)")
    ref.add_argument(
        "--min-match",
        type=int,
        default=2,
        help="keyword candidates must contain this many distinct query terms (capped at the query's count); "
        "1 = OR, 99 = AND (default 2)",
    )
    ref.add_argument("--keep-stopwords", action="store_true", help="keyword side keeps stop words (as FTS5 does)")
    ref.add_argument("--porter", action="store_true", help="keyword side uses a Porter stemmer (needs the snowballstemmer package)")
    ref.add_argument("--embeddings-url", help="get vectors from this OpenAI-compatible base URL (…/v1) instead of in-process")
    http = parser.add_argument_group("worker")
    http.add_argument("--http", metavar="BASE_URL", help="evaluate the worker's memory API instead of the local reference")
    http.add_argument("--token", default="tok-alice")
    http.add_argument("--namespace", default="retrieval-eval")
    http.add_argument("--load", action="store_true", help="PUT every document before searching")
    out = parser.add_argument_group("output")
    out.add_argument("--per-query", action="store_true", help="print the rank of each query in each mode")
    out.add_argument("--json", action="store_true", help="print the report as JSON")
    out.add_argument("--min-margin", type=float, default=None, help="exit 1 unless hybrid leads both modes by this much")
    args = parser.parse_args(argv)

    documents = load_documents(args.documents)
    queries = load_queries(args.queries)
    if args.kind:
        queries = [q for q in queries if q.get("kind") == args.kind]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            parser.error(f"unknown mode {m!r}")

    if args.http:
        memory = HttpMemory(args.http, args.token, args.namespace)
        if args.load:
            start = time.perf_counter()
            memory.load(documents)
            print(f"loaded {len(documents)} documents in {time.perf_counter() - start:.1f}s", file=sys.stderr)
        search: SearchFn = memory.search
        title = f"worker {args.http} namespace {args.namespace}"
    else:
        embed_many = http_embedder(args.embeddings_url, dimensions=args.dimensions) if args.embeddings_url else None
        extra: dict = {}
        if args.keep_stopwords:
            extra["stopwords"] = ()
        if args.porter:
            import snowballstemmer  # optional, only for this comparison

            porter = snowballstemmer.stemmer("porter")
            extra["stem"] = lambda w, _p=porter: _p.stemWord(w)
        reference = LocalReference(
            documents,
            dimensions=args.dimensions,
            chunk_words=args.chunk_words,
            candidates=args.candidates,
            min_match=args.min_match,
            embed_many=embed_many,
            **extra,
        )
        search = reference.search
        title = (
            f"local reference: {len(documents)} documents, {reference.n} chunks, {args.dimensions} dimensions, "
            f"keyword min-match {args.min_match}{', Porter' if args.porter else ''}{', stop words kept' if args.keep_stopwords else ''}, "
            f"RRF k={RRF_K} over {args.candidates} candidates"
        )

    report = evaluate(search, queries, modes, k=args.depth, depth=args.depth)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(format_table(report, title))
        if args.per_query:
            print()
            print(format_per_query(report))
    if args.min_margin is not None and "hybrid" in report.modes and len(report.modes) > 1:
        mg = report.margins()
        if mg["recall"] < args.min_margin or mg["mrr"] < args.min_margin:
            print(f"hybrid margin below {args.min_margin}: {mg}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
