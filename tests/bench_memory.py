"""Memory benchmarks through the worker: ingest throughput and hybrid search latency, for the embedded
store (Durable Object SQLite) at 10k chunks and for Postgres + pgvector at 10k and 100k chunks.

Run through ``scripts/bench memory``. The scripted server answers embeddings instantly; Postgres runs on
this machine; everything goes through ``wrangler dev`` over loopback.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import start_llm, summary  # noqa: E402
from conftest import worker_vars  # noqa: E402
from harness.api import ALICE_TOKEN  # noqa: E402
from harness.pgbouncer import PgBouncer, find_pgbouncer  # noqa: E402
from harness.postgres import PostgresServer  # noqa: E402
from harness.worker import WorkerProcess  # noqa: E402

DIMENSIONS = 256
CHUNKS_PER_DOCUMENT = 10
VOCABULARY = 20_000


def word(rng: random.Random) -> str:
    """A word of a Zipf-like vocabulary: a few very common, most rare — as in real text."""
    return f"w{int(VOCABULARY * rng.random() ** 3)}"


HEADERS = {"authorization": f"Bearer {ALICE_TOKEN}"}


def document(rng: random.Random, index: int) -> str:
    sections = []
    for s in range(CHUNKS_PER_DOCUMENT):
        sentences = [" ".join(word(rng) for _ in range(14)) + "." for _ in range(8)]
        sections.append(f"## Section {s} of document {index}\n\n" + " ".join(sentences))
    return "\n\n".join(sections)


def ingest(url: str, ns: str, documents: int, threads: int = 8) -> int:
    rng = random.Random(7)
    bodies = [document(rng, i) for i in range(documents)]

    def put(i: int) -> int:
        with httpx.Client(timeout=120) as client:
            resp = client.put(f"{url}/api/memory/{ns}/documents/doc-{i}", json={"text": bodies[i]}, headers=HEADERS)
            resp.raise_for_status()
            return resp.json()["chunks"]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        chunks = sum(pool.map(put, range(documents)))
    elapsed = time.perf_counter() - started
    print(f"  ingest: {chunks} chunks in {elapsed:.1f} s = {chunks / elapsed:.0f} chunks/s ({threads} clients)")
    return chunks


def search_latency(url: str, ns: str, label: str, queries: int = 200) -> None:
    rng = random.Random(11)
    with httpx.Client(timeout=60) as client:
        for _ in range(5):
            client.post(f"{url}/api/memory/{ns}/search", json={"query": "warm up"}, headers=HEADERS)
        samples = []
        for _ in range(queries):
            query = " ".join(f"w{rng.randint(50, 3_000)}" for _ in range(3))
            started = time.perf_counter()
            resp = client.post(f"{url}/api/memory/{ns}/search", json={"query": query, "k": 5}, headers=HEADERS)
            samples.append((time.perf_counter() - started) * 1000)
            resp.raise_for_status()
            assert resp.json()["results"], f"no results for {query!r}"
    print(f"  hybrid search, {label}: {summary(samples)}")


def bulk_load(pg: PostgresServer, namespace_key: str, rows: int) -> None:
    """Adds `rows` synthetic chunks (random unit vectors, random words) straight into Postgres."""
    started = time.perf_counter()
    pg.psql(
        timeout=1800,
        sql=f"""
        INSERT INTO memory_documents (namespace, id, kind, title, source, metadata, content_hash, body, created_at, updated_at)
        SELECT '{namespace_key}', 'bulk-' || g, 'document', '', NULL, '{{}}', md5(g::text), '', 0, 0
        FROM generate_series(1, {rows // CHUNKS_PER_DOCUMENT}) g;
        INSERT INTO memory_chunks (namespace, document_id, chunk_index, heading, body, content_hash, embedding)
        SELECT '{namespace_key}', 'bulk-' || (1 + (g - 1) / {CHUNKS_PER_DOCUMENT}), (g - 1) % {CHUNKS_PER_DOCUMENT}, '',
               (SELECT string_agg('w' || floor({VOCABULARY} * power(random(), 3))::int, ' ')
                  FROM generate_series(1, 112) w WHERE g > 0),
               md5(g::text),
               (SELECT l2_normalize(array_agg(random() - 0.5)::vector) FROM generate_series(1, {DIMENSIONS}) d WHERE g > 0)
        FROM generate_series(1, {rows}) g;
        ANALYZE memory_chunks;
        """,
    )
    print(f"  bulk-loaded {rows} chunks in {time.perf_counter() - started:.0f} s")


def pooled(variables: dict, pg: PostgresServer, ns: str, label: str) -> None:
    """Search latency with the worker's connections going through a transaction pooler, as Hyperdrive
    pools them in production (skipped without pgbouncer: scripts/install-pgbouncer)."""
    if find_pgbouncer() is None:
        print("  (no pgbouncer: pooled figures skipped; scripts/install-pgbouncer provides one)")
        return
    with PgBouncer(pg.port) as pooler:
        with WorkerProcess({**variables, "EDGECLAW_DATABASE_URL": pooler.url}) as worker:
            print("Postgres + pgvector, through a transaction pooler (pgbouncer), as Hyperdrive pools in production:")
            search_latency(worker.url, ns, label)


def main() -> None:
    # so that a stopped run still shuts down the servers it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=1000, help="documents of 10 chunks ingested per store")
    parser.add_argument("--bulk", type=int, default=90_000, help="extra chunks loaded into Postgres")
    parser.add_argument("--stores", default="embedded,postgres", help="which stores to measure")
    args = parser.parse_args()

    llm, llm_url = start_llm()
    variables = {
        **worker_vars(llm_url),
        "EDGECLAW_EMBEDDING_MODEL": "openai:test-embed",
        "EDGECLAW_EMBEDDING_DIMENSIONS": str(DIMENSIONS),
    }
    try:
        if "embedded" in args.stores:
            with WorkerProcess(variables) as worker:
                print("embedded store (Durable Object SQLite):")
                chunks = ingest(worker.url, "bench", args.documents)
                search_latency(worker.url, "bench", f"{chunks} chunks")
        if "postgres" not in args.stores:
            return
        with PostgresServer() as pg:
            with WorkerProcess(variables, postgres_url=pg.url) as worker:
                print("Postgres + pgvector, through local Hyperdrive:")
                chunks = ingest(worker.url, "bench", args.documents)
                pg.psql("ANALYZE")  # what autovacuum does shortly after a bulk ingest
                search_latency(worker.url, "bench", f"{chunks} chunks")
            with WorkerProcess({**variables, "EDGECLAW_DATABASE_URL": pg.url}) as worker:
                print("Postgres + pgvector, direct socket (EDGECLAW_DATABASE_URL):")
                search_latency(worker.url, "bench", f"{chunks} chunks")
            pooled(variables, pg, "bench", f"{chunks} chunks")
            if args.bulk:
                bulk_load(pg, "alice/bench", args.bulk)
                with WorkerProcess({**variables, "EDGECLAW_DATABASE_URL": pg.url}) as worker:
                    print("Postgres + pgvector, direct socket (EDGECLAW_DATABASE_URL):")
                    search_latency(worker.url, "bench", f"{chunks + args.bulk} chunks")
                pooled(variables, pg, "bench", f"{chunks + args.bulk} chunks")
    finally:
        llm.terminate()
        llm.wait(timeout=10)


if __name__ == "__main__":
    main()
