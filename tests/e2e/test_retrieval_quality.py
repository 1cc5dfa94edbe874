"""Retrieval quality through the real worker and store: on the repository's corpus (257 documents, 154
labelled queries), hybrid search must beat keyword-only and vector-only on recall@5 and on MRR."""

from __future__ import annotations

import uuid

from harness.api import ALICE_TOKEN
from retrieval_eval import HttpMemory, evaluate, format_table, load_documents, load_queries


def test_hybrid_beats_keyword_and_vector(store):
    name, worker = store
    with HttpMemory(worker.url, ALICE_TOKEN, f"eval-{uuid.uuid4().hex[:8]}") as memory:
        memory.load(load_documents())
        report = evaluate(memory.search, load_queries())
    print(format_table(report, f"retrieval quality, {name} store"))
    hybrid, keyword, vector = (report.modes[m] for m in ("hybrid", "keyword", "vector"))
    assert hybrid.recall > keyword.recall and hybrid.recall > vector.recall, format_table(report)
    assert hybrid.mrr > keyword.mrr and hybrid.mrr > vector.mrr, format_table(report)
