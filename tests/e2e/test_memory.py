"""Memory through the worker's API: one behavioural suite, run against both stores — the embedded
per-namespace Durable Objects (SQLite FTS5 + exact vectors) and Postgres + pgvector through Hyperdrive."""

from __future__ import annotations

import uuid

import pytest


from harness import expect
from harness.api import BOB_TOKEN, Api

from conftest import EMBEDDING_VARS

@pytest.fixture
def mem(store) -> Api:
    return Api(store[1].url)


@pytest.fixture
def ns() -> str:
    return f"ns-{uuid.uuid4().hex[:12]}"


def put(api: Api, ns: str, doc_id: str, text: str, **fields) -> dict:
    resp = api.request("PUT", f"/api/memory/{ns}/documents/{doc_id}", json={"text": text, **fields})
    assert resp.status_code == 200, resp.text
    return resp.json()


def search(api: Api, ns: str, query: str, **fields) -> list[dict]:
    resp = api.post(f"/api/memory/{ns}/search", json={"query": query, **fields})
    assert resp.status_code == 200, resp.text
    return resp.json()["results"]


MANUAL = """# Boiler manual

The boiler shows error E119 when the water pressure drops below one bar.

## Resetting

Hold the reset button for five seconds, then wait for the pump to restart.

```sh
boilerctl reset --force
```
"""


def test_documents_round_trip(mem: Api, ns: str):
    report = put(mem, ns, "boiler", MANUAL, title="Boiler", source="manual.pdf", metadata={"room": "kitchen"})
    assert report == {"document_id": "boiler", "chunks": 2, "embedded": 2, "unchanged": False}
    doc = mem.get(f"/api/memory/{ns}/documents/boiler").json()
    assert (doc["title"], doc["text"], doc["source"], doc["metadata"], doc["kind"]) == (
        "Boiler",
        MANUAL,
        "manual.pdf",
        {"room": "kitchen"},
        "document",
    )
    listed = mem.get(f"/api/memory/{ns}/documents").json()
    assert [(d["id"], d["chunks"]) for d in listed["documents"]] == [("boiler", 2)]
    assert mem.delete(f"/api/memory/{ns}/documents/boiler").json() == {"deleted": True}
    expect.api_error(mem.get(f"/api/memory/{ns}/documents/boiler"), 404, "document_not_found")
    expect.api_error(mem.delete(f"/api/memory/{ns}/documents/boiler"), 404, "document_not_found")
    assert search(mem, ns, "boiler") == []


def test_reindexing_skips_unchanged_and_replaces_changed(mem: Api, ns: str):
    put(mem, ns, "boiler", MANUAL)
    assert put(mem, ns, "boiler", MANUAL)["unchanged"] is True
    changed = MANUAL.replace("five seconds", "ten seconds")
    report = put(mem, ns, "boiler", changed)
    # only the chunk whose text changed is embedded again
    assert (report["unchanged"], report["chunks"], report["embedded"]) == (False, 2, 1)
    assert put(mem, ns, "boiler", "A short note about tulips.")["chunks"] == 1
    assert search(mem, ns, "E119", mode="keyword") == []
    assert search(mem, ns, "tulips", mode="keyword")[0]["document_id"] == "boiler"


def test_each_mode_ranks_with_its_own_signal(mem: Api, ns: str):
    put(mem, ns, "boiler", MANUAL, title="Boiler")
    put(mem, ns, "garden", "# Garden\n\nPlant tulip bulbs in autumn, ten centimetres deep.", title="Garden")
    keyword = search(mem, ns, "E119", mode="keyword")
    assert keyword[0]["document_id"] == "boiler" and keyword[0]["keyword_rank"] == 1 and keyword[0]["vector_rank"] is None
    vector = search(mem, ns, "when to plant tulip bulbs", mode="vector")
    assert vector[0]["document_id"] == "garden" and vector[0]["vector_rank"] == 1
    assert -1.0 <= vector[0]["score"] <= 1.0
    hybrid = search(mem, ns, "error E119 pressure")
    assert hybrid[0]["document_id"] == "boiler"
    assert hybrid[0]["keyword_rank"] is not None and hybrid[0]["vector_rank"] is not None
    assert search(mem, ns, "E119", k=1) and len(search(mem, ns, "the", k=1)) <= 1


def test_filters_by_kind_and_metadata(mem: Api, ns: str):
    put(mem, ns, "kitchen", "The kitchen boiler is a combi model.", metadata={"room": "kitchen"})
    put(mem, ns, "attic", "The attic boiler is an old tank model.", metadata={"room": "attic"})
    put(mem, ns, "USER.md", "The user owns two boilers.", kind="note")
    only_attic = search(mem, ns, "boiler", filter={"metadata": {"room": "attic"}})
    assert [r["document_id"] for r in only_attic] == ["attic"]
    notes = search(mem, ns, "boiler", filter={"kinds": ["note"]})
    assert [r["document_id"] for r in notes] == ["USER.md"]
    listed = mem.get(f"/api/memory/{ns}/documents?kind=note").json()["documents"]
    assert [d["id"] for d in listed] == ["USER.md"]


def test_namespaces_belong_to_their_principal(mem: Api, ns: str):
    put(mem, ns, "secret", "Alice's locker code is 4471.")
    bob = mem.as_token(BOB_TOKEN)
    expect.api_error(bob.post(f"/api/memory/{ns}/search", json={"query": "locker code"}), 404, "namespace_not_found")
    expect.api_error(bob.get(f"/api/memory/{ns}/documents/secret"), 404)
    put(bob, ns, "mine", "Bob's bike is blue.")
    assert [r["document_id"] for r in search(bob, ns, "locker code bike")] == ["mine"]
    assert [r["document_id"] for r in search(mem, ns, "locker code bike")] == ["secret"]


def test_bad_input_is_rejected_clearly(mem: Api, ns: str):
    path = f"/api/memory/{ns}/documents"
    expect.api_error(mem.request("PUT", f"{path}/d", json={"text": "   "}), 400, "invalid_request")
    expect.api_error(mem.request("PUT", f"{path}/d", json={"title": "no text"}), 400, "invalid_request")
    expect.api_error(mem.request("PUT", f"{path}/d", json={"text": "x", "colour": "red"}), 400, "invalid_request")
    expect.api_error(mem.request("PUT", f"{path}/d", content=b'{"text": "\xff\xfe"}'), 400, "invalid_json")
    expect.api_error(mem.request("PUT", f"{path}/d", json={"text": "x" * 600_000}), 413, "payload_too_large")
    expect.api_error(mem.request("PUT", f"{path}/bad%20id", json={"text": "x"}), 400, "invalid_request")
    expect.api_error(mem.request("PUT", "/api/memory/Bad_NS/documents/d", json={"text": "x"}), 400, "invalid_request")
    expect.api_error(mem.post(f"/api/memory/{ns}/search", json={"query": "x"}), 404, "namespace_not_found")
    put(mem, ns, "d", "some text")
    for body in ({"query": ""}, {"query": "x", "k": 0}, {"query": "x", "k": 51}, {"query": "x", "mode": "psychic"}):
        expect.api_error(mem.post(f"/api/memory/{ns}/search", json=body), 400, "invalid_request")
    expect.api_error(mem.get(f"{path}?limit=0"), 400, "invalid_request")
    expect.api_error(mem.post(f"{path}/d"), 405, "method_not_allowed")
    expect.api_error(mem.request("PUT", f"{path}/d", json={"text": "x"}, token=None), 401, "unauthorized")


def test_postgres_down_is_503_and_nothing_is_lost(postgres_factory, worker_factory):
    # Straight to Postgres (EDGECLAW_DATABASE_URL): wrangler's local Hyperdrive proxy exits when its
    # database refuses connections, so the outage is staged on the direct route, which shares every
    # line of connection handling with the Hyperdrive one.
    server = postgres_factory()
    worker = worker_factory({**EMBEDDING_VARS, "EDGECLAW_DATABASE_URL": server.url})
    api = Api(worker.url)
    put(api, "default", "boiler", MANUAL)

    server.kill()
    expect.api_error(api.post("/api/memory/default/search", json={"query": "E119"}), 503, "memory_unavailable")
    resp = api.request("PUT", "/api/memory/default/documents/garden", json={"text": "Tulips in autumn."})
    expect.api_error(resp, 503, "memory_unavailable")
    # chat keeps working without memory
    expect.ok_turn(api.send(f"s-{uuid.uuid4().hex}", "still there?"))

    server.restart()
    assert search(api, "default", "E119")[0]["document_id"] == "boiler"
    expect.api_error(api.get("/api/memory/default/documents/garden"), 404, "document_not_found")
    assert server.scalar("SELECT count(*) FROM memory_documents") == "1"


def test_an_embedding_model_of_another_size_is_refused(worker_factory):
    # the "-d32" model of the scripted server always answers 32 dimensions; the store expects 64
    worker = worker_factory({**EMBEDDING_VARS, "EDGECLAW_EMBEDDING_MODEL": "openai:test-embed-d32"})
    api = Api(worker.url)
    resp = api.request("PUT", "/api/memory/default/documents/d", json={"text": "Some text to embed."})
    body = expect.api_error(resp, 500, "dimension_mismatch")
    assert "32" in body["message"] and "64" in body["message"]
    expect.api_error(api.get("/api/memory/default/documents/d"), 404, "document_not_found")


WORKERS_AI_VARS = {
    "EDGECLAW_EMBEDDING_MODEL": "workers-ai:@cf/test-embed",
    "EDGECLAW_EMBEDDING_BINDING": "AI",
    "EDGECLAW_EMBEDDING_DIMENSIONS": "64",
}


def test_workers_ai_binding_embeds(worker_factory, llm):
    worker = worker_factory(WORKERS_AI_VARS, workers_ai={"url": llm.url, "key": "test-openai-key"})
    api = Api(worker.url)
    put(api, "default", "garden", "# Garden\n\nPlant tulip bulbs in autumn, ten centimetres deep.")
    put(api, "default", "boiler", MANUAL)
    vector = search(api, "default", "when to plant tulip bulbs", mode="vector")
    assert vector[0]["document_id"] == "garden" and vector[0]["vector_rank"] == 1
    embedded = [r for r in llm.requests(wire="embeddings") if r["model"] == "test-embed"]
    assert embedded, "the binding did not reach the embeddings server"


def test_workers_ai_binding_errors_are_reported(worker_factory, llm):
    vars = {**WORKERS_AI_VARS, "EDGECLAW_EMBEDDING_MODEL": "workers-ai:no-such-model"}
    api = Api(worker_factory(vars, workers_ai={"url": llm.url, "key": "test-openai-key"}).url)
    resp = api.request("PUT", "/api/memory/default/documents/d", json={"text": "Some text to embed."})
    assert "5007: No such model" in expect.api_error(resp, 502, "embedding_unavailable")["message"]
    expect.api_error(api.get("/api/memory/default/documents/d"), 404, "document_not_found")

    unbound = Api(worker_factory(WORKERS_AI_VARS).url)
    resp = unbound.request("PUT", "/api/memory/default/documents/d", json={"text": "Some text to embed."})
    assert "no binding `AI`" in expect.api_error(resp, 502, "embedding_unavailable")["message"]
