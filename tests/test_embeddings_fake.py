"""The fake embeddings endpoint, the retrieval corpus and the local reference evaluation.

No worker is needed.  The endpoint is checked with the official ``openai``
client, the corpus for shape and consistency, and the local reference search
for the property the corpus was built to show: hybrid search beats both
keyword-only and vector-only search on recall@5 and MRR.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import httpx
import openai
import pytest

import retrieval_eval as reval
from harness import embedding_model
from harness.llm_server import ScriptedLLM

TESTS_DIR = Path(__file__).resolve().parent
MODEL = "text-embedding-3-small"
MARGIN = 0.05


def new_nonce() -> str:
    return "e" + uuid.uuid4().hex[:12]


@pytest.fixture
def oai(llm: ScriptedLLM) -> openai.OpenAI:
    return openai.OpenAI(api_key="test-openai-key", base_url=f"{llm.url}/v1", max_retries=0, timeout=30)


def post(llm: ScriptedLLM, body, key: str = "test-openai-key", **headers) -> httpx.Response:
    hdrs = {"Authorization": f"Bearer {key}", **headers}
    if isinstance(body, (bytes, str)):
        return httpx.post(f"{llm.url}/v1/embeddings", content=body, headers=hdrs, timeout=30)
    return httpx.post(f"{llm.url}/v1/embeddings", json=body, headers=hdrs, timeout=30)


def norm(v) -> float:
    return math.sqrt(sum(x * x for x in v))


# ---------------------------------------------------------------------------
# the endpoint, through the official client
# ---------------------------------------------------------------------------


def test_client_default_base64_and_float_agree(oai: openai.OpenAI):
    text = "My tap keeps dripping"
    default = oai.embeddings.create(model=MODEL, input=text)  # the client asks for base64 and decodes it
    floats = oai.embeddings.create(model=MODEL, input=text, encoding_format="float")
    assert default.object == "list" and default.model == MODEL
    assert len(default.data) == 1 and default.data[0].index == 0 and default.data[0].object == "embedding"
    assert len(floats.data[0].embedding) == embedding_model.DEFAULT_DIMENSIONS == 64
    for a, b in zip(default.data[0].embedding, floats.data[0].embedding):
        assert a == pytest.approx(b, abs=1e-6)
    assert floats.data[0].embedding == embedding_model.embed(text)


def test_base64_is_little_endian_float32(llm: ScriptedLLM):
    body = post(llm, {"model": MODEL, "input": "ERR-4471", "encoding_format": "base64"}).json()
    raw = base64.b64decode(body["data"][0]["embedding"])
    assert len(raw) == 4 * 64
    decoded = struct.unpack("<64f", raw)
    for a, b in zip(decoded, embedding_model.embed("ERR-4471")):
        assert a == pytest.approx(b, abs=1e-6)


def test_batch_keeps_order_and_matches_single_calls(oai: openai.OpenAI):
    texts = ["reset a circuit breaker", "sourdough starter", "ERR-4471", "Osprey canary"]
    batch = oai.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    assert [d.index for d in batch.data] == [0, 1, 2, 3]
    for text, item in zip(texts, batch.data):
        single = oai.embeddings.create(model=MODEL, input=text, encoding_format="float")
        assert item.embedding == single.data[0].embedding
    assert batch.usage.prompt_tokens == batch.usage.total_tokens == sum(embedding_model.count_tokens(t) for t in texts)
    assert batch.usage.prompt_tokens > 0


def test_deterministic_across_servers_and_in_process():
    text = "How do I roll back a bad release?"
    vectors = []
    for _ in range(2):
        with ScriptedLLM() as server:
            client = openai.OpenAI(api_key="test-openai-key", base_url=f"{server.url}/v1", max_retries=0)
            vectors.append(client.embeddings.create(model=MODEL, input=text, encoding_format="float").data[0].embedding)
    assert vectors[0] == vectors[1] == embedding_model.embed(text)
    # a fresh interpreter (different hash seed) gives the same vector
    code = "import json,sys; sys.path.insert(0, '.'); from harness import embedding_model as m; print(json.dumps(m.embed(%r)))" % text
    out = subprocess.run([sys.executable, "-c", code], cwd=str(TESTS_DIR), capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""})
    assert json.loads(out.stdout) == vectors[0]


def test_vectors_are_normalised_and_rounded(oai: openai.OpenAI):
    texts = ["a", "Tally", "the the the", "Ljubljana in December", "x" * 5000, "🙂 emoji only 🙂", "   spaced   "]
    for dims in (1, 2, 32, 64, 300):
        data = oai.embeddings.create(model=MODEL, input=texts, dimensions=dims, encoding_format="float").data
        for item in data:
            v = item.embedding
            assert len(v) == dims
            assert norm(v) == pytest.approx(1.0, abs=1e-5)
            assert all(round(x, 6) == x for x in v)


def test_dimensions_parameter_and_d32_model(oai: openai.OpenAI):
    assert len(oai.embeddings.create(model=MODEL, input="hi", dimensions=256, encoding_format="float").data[0].embedding) == 256
    assert len(oai.embeddings.create(model=MODEL, input="hi", dimensions=3072).data[0].embedding) == 3072
    for asked in (None, 8, 1536):
        kwargs = {} if asked is None else {"dimensions": asked}
        emb = oai.embeddings.create(model="fake-embed-d32", input="hi", encoding_format="float", **kwargs)
        assert len(emb.data[0].embedding) == 32
        assert emb.model == "fake-embed-d32"
    # different dimensions are different vectors, not truncations of one another
    v64 = embedding_model.embed("garden slugs", 64)
    v128 = embedding_model.embed("garden slugs", 128)
    assert v128[:64] != v64


@pytest.mark.parametrize("dims", [0, -1, 3073, "64", 64.5, True])
def test_bad_dimensions_are_400(llm: ScriptedLLM, dims):
    resp = post(llm, {"model": MODEL, "input": "hi", "dimensions": dims})
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["type"] == "invalid_request_error" and "dimensions" in err["message"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"model": MODEL, "input": ""}, "empty"),
        ({"model": MODEL, "input": ["fine", ""]}, "index 1"),
        ({"model": MODEL, "input": []}, "empty array"),
        ({"model": MODEL, "input": [[1, 2, 3]]}, "token arrays"),
        ({"model": MODEL, "input": [1, 2, 3]}, "token arrays"),
        ({"model": MODEL}, "input"),
        ({"model": MODEL, "input": 42}, "input"),
        ({"input": "hi"}, "model"),
        ({"model": "", "input": "hi"}, "model"),
        ({"model": MODEL, "input": "hi", "encoding_format": "int8"}, "encoding_format"),
        ({"model": MODEL, "input": ["x"] * 2049}, "2048"),
    ],
)
def test_invalid_requests_are_openai_400s(llm: ScriptedLLM, body, fragment):
    resp = post(llm, body)
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error"
    assert fragment in err["message"]


def test_invalid_input_through_the_client(oai: openai.OpenAI):
    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model=MODEL, input="")
    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model=MODEL, input=["ok"] * 2049)
    assert len(oai.embeddings.create(model=MODEL, input=["ok"] * 2048, encoding_format="float").data) == 2048


def test_non_json_and_wrong_method(llm: ScriptedLLM):
    assert post(llm, b"this is not json").status_code == 400
    assert post(llm, b"[1, 2]").status_code == 400
    resp = httpx.get(f"{llm.url}/v1/embeddings", headers={"Authorization": "Bearer test-openai-key"})
    assert resp.status_code == 405 and "error" in resp.json()


def test_bad_key_is_401(llm: ScriptedLLM):
    client = openai.OpenAI(api_key="wrong", base_url=f"{llm.url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        client.embeddings.create(model=MODEL, input="hi")
    assert info.value.status_code == 401
    assert info.value.body["code"] == "invalid_api_key"
    resp = httpx.post(f"{llm.url}/v1/embeddings", json={"model": MODEL, "input": "hi"})  # no header at all
    assert resp.status_code == 401 and resp.json()["error"]["type"] == "invalid_request_error"
    # authentication is checked before the body
    assert post(llm, b"not json", key="wrong").status_code == 401


def test_fail_once_is_a_429_then_succeeds(oai: openai.OpenAI, llm: ScriptedLLM):
    nonce = new_nonce()
    with pytest.raises(openai.RateLimitError) as info:
        oai.embeddings.create(model=MODEL, input="hi", extra_headers={"x-fail-once": nonce})
    assert info.value.response.headers["retry-after"] == "1"
    assert info.value.body["code"] == "rate_limit_exceeded"
    ok = oai.embeddings.create(model=MODEL, input="hi", extra_headers={"x-fail-once": nonce}, encoding_format="float")
    assert ok.data[0].embedding == embedding_model.embed("hi")
    # a different nonce fails once on its own
    with pytest.raises(openai.RateLimitError):
        oai.embeddings.create(model=MODEL, input="hi", extra_headers={"x-fail-once": new_nonce()})
    statuses = [r["status"] for r in llm.requests(nonce=nonce, wire="embeddings")]
    assert statuses == [429, 200]


def test_fail_once_counter_is_separate_from_chat_nonces(oai: openai.OpenAI):
    nonce = new_nonce()
    oai.chat.completions.create(model="m", messages=[{"role": "user", "content": f"#nonce {nonce} hello"}])
    with pytest.raises(openai.RateLimitError):
        oai.embeddings.create(model=MODEL, input="hi", extra_headers={"x-fail-once": nonce})


def test_heal_cancels_fail_once(oai: openai.OpenAI, llm: ScriptedLLM):
    nonce = new_nonce()
    llm.heal(nonce)
    oai.embeddings.create(model=MODEL, input="hi", extra_headers={"x-fail-once": nonce})


@pytest.mark.slow
def test_client_retry_honours_retry_after(llm: ScriptedLLM):
    client = openai.OpenAI(api_key="test-openai-key", base_url=f"{llm.url}/v1", max_retries=2, timeout=30)
    nonce = new_nonce()
    start = time.monotonic()
    result = client.embeddings.create(model=MODEL, input="retry me", extra_headers={"x-fail-once": nonce})
    assert time.monotonic() - start >= 0.9
    assert len(result.data[0].embedding) == 64
    assert [r["status"] for r in llm.requests(nonce=nonce)] == [429, 200]


def test_slow_header_delays(oai: openai.OpenAI):
    start = time.monotonic()
    oai.embeddings.create(model=MODEL, input="hi", extra_headers={"x-slow-ms": "250"})
    assert time.monotonic() - start >= 0.25


def test_requests_are_recorded(oai: openai.OpenAI, llm: ScriptedLLM):
    nonce = new_nonce()
    oai.embeddings.create(model="fake-embed-d32", input=["one", "two"], dimensions=100, extra_headers={"x-nonce": nonce})
    recs = llm.requests(nonce=nonce)
    assert len(recs) == 1
    rec = recs[0]
    assert (rec["wire"], rec["path"], rec["method"], rec["model"]) == ("embeddings", "/v1/embeddings", "POST", "fake-embed-d32")
    assert (rec["status"], rec["outcome"], rec["inputs"], rec["dimensions"]) == (200, "ok", 2, 32)
    assert rec["user_text"] == "one" and rec["headers"]["x-nonce"] == nonce
    assert rec["body"]["input"] == ["one", "two"] and rec["body"]["dimensions"] == 100
    over_http = httpx.get(f"{llm.url}/_requests", params={"nonce": nonce}).json()
    assert over_http[0]["wire"] == "embeddings" and "body" not in over_http[0]
    # chat requests are not affected: their records still say which chat wire answered
    assert all(r["wire"] == "embeddings" for r in llm.requests(wire="embeddings"))


# ---------------------------------------------------------------------------
# the embedding model's intended behaviour
# ---------------------------------------------------------------------------


def cos(a: str, b: str, dims: int = 64) -> float:
    return embedding_model.cosine(embedding_model.embed(a, dims), embedding_model.embed(b, dims))


def test_synonyms_meet_and_unrelated_texts_do_not():
    assert embedding_model.concepts_of("tap") == embedding_model.concepts_of("faucet")
    assert cos("my tap is dripping", "the faucet leaks") > 0.6
    assert cos("my tap is dripping", "the faucet leaks") > cos("my tap is dripping", "index funds and fees") + 0.4
    assert cos("lost my laptop", "misplaced computer") > 0.6
    # phrases: "time off" is leave, "sign in" is login
    assert "work.leave" in embedding_model.concepts_of("leave")
    assert cos("time off", "leave") > 0.8


def test_exact_codes_are_blurred(reference):
    # codes sharing their first characters look alike (visible once hashing collisions are rare)...
    assert cos("ERR-4471", "ERR-4474", 3072) > cos("ERR-4471", "ERR-9120", 3072) + 0.1
    assert cos("ERR-4471", "ERR-4471") == pytest.approx(1.0, abs=1e-5)
    # ...and inside whole documents a code is one feature among many: keyword search finds the
    # runbook at once, the vector ranking does not
    assert reference.search("ERR-4471", "keyword", 10)[0] == "kr-runbook-err-4471"
    assert reference.search("ERR-4471", "vector", 10)[0] != "kr-runbook-err-4471"


def test_stemmer_and_tokenizer():
    stem = embedding_model.stem
    assert [stem(w) for w in ("dripping", "dripped", "drips", "berries", "baking", "baked", "glasses", "runs")] == [
        "drip", "drip", "drip", "berry", "bak", "bak", "glass", "run"]
    assert stem("4471") == "4471" and stem("bus") == "bus"
    assert embedding_model.tokenize("ERR-4471: Pissaladière, v2.3") == ["err", "4471", "pissaladiere", "v2", "3"]


def test_lexicon_is_well_formed():
    assert len(embedding_model.DOMAIN_OF) > 300
    with pytest.raises(ValueError):
        embedding_model._parse_lexicon("no equals sign here")
    with pytest.raises(ValueError):
        embedding_model._parse_lexicon("a.b = x\na.b = y")
    with pytest.raises(ValueError):
        embedding_model._parse_lexicon("a.b = three_word_phrase")


# ---------------------------------------------------------------------------
# the corpus
# ---------------------------------------------------------------------------


def test_corpus_shape():
    docs = reval.load_documents()
    queries = reval.load_queries()
    assert len(docs) >= 220 and len(queries) >= 60
    ids = [d["id"] for d in docs]
    assert len(set(ids)) == len(ids)
    topics = {d["metadata"]["topic"] for d in docs}
    assert {"cooking", "travel", "programming", "home", "finance", "gardening", "health", "company"} <= topics
    for d in docs:
        assert set(d) == {"id", "title", "text", "metadata"} and d["title"] and d["metadata"]["topic"]
        assert 40 <= len(d["text"].split()) <= 400, d["id"]
    assert sum("```" in d["text"] for d in docs) >= 20
    assert sum("\n## " in d["text"] for d in docs) >= 20
    kinds = {q["kind"] for q in queries}
    assert kinds == {"exact", "paraphrase", "mixed"}
    known = set(ids)
    for q in queries:
        assert set(q) == {"query", "relevant", "kind"} and q["query"].strip()
        assert q["relevant"] and set(q["relevant"]) <= known, q
    assert len({q["query"] for q in queries}) == len(queries)


def test_corpus_files_are_up_to_date():
    script = TESTS_DIR / "data" / "retrieval" / "build_corpus.py"
    out = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# ---------------------------------------------------------------------------
# the evaluation library
# ---------------------------------------------------------------------------


def test_metrics_count_a_document_once():
    ranked = ["a", "a", "b", "a", "c", "d", "e", "f"]
    assert reval.distinct(ranked) == ["a", "b", "c", "d", "e", "f"]
    assert reval.first_rank(ranked, ["c"]) == 3
    assert reval.first_rank(ranked, ["zzz"]) is None
    assert reval.first_rank(ranked, ["f"], depth=5) is None
    assert reval.recall_at(ranked, ["a", "e"]) == 1.0
    assert reval.recall_at(ranked, ["a", "f"]) == 0.5

    def search(query, mode, k):
        return {"keyword": ["x", "x", "rel"], "vector": ["rel"], "hybrid": []}[mode]

    report = reval.evaluate(search, [{"query": "q", "relevant": ["rel"], "kind": "exact"}])
    assert report.modes["keyword"].mrr == 0.5 and report.modes["vector"].mrr == 1.0
    assert report.modes["hybrid"].mrr == 0.0 and report.modes["hybrid"].recall == 0.0
    assert "keyword" in reval.format_table(report) and "q" in reval.format_per_query(report)


def test_chunking_packs_paragraphs():
    text = "\n\n".join(f"para {i} " + "word " * 30 for i in range(5))
    assert reval.chunk_text(text, None) == [text]
    chunks = reval.chunk_text(text, 70)
    assert len(chunks) == 3 and all(c.startswith("para") for c in chunks)
    assert "\n\n".join(chunks) == text


@pytest.fixture(scope="module")
def reference() -> reval.LocalReference:
    return reval.LocalReference(reval.load_documents())


@pytest.fixture(scope="module")
def reference_report(reference: reval.LocalReference) -> reval.Report:
    return reval.evaluate(reference.search, reval.load_queries())


def test_hybrid_beats_keyword_and_vector(reference_report: reval.Report):
    k, v, h = (reference_report.modes[m] for m in ("keyword", "vector", "hybrid"))
    print("\n" + reval.format_table(reference_report, "local reference"))
    assert h.recall >= k.recall + MARGIN and h.recall >= v.recall + MARGIN
    assert h.mrr >= k.mrr + MARGIN and h.mrr >= v.mrr + MARGIN


def test_each_single_mode_wins_its_own_kind(reference_report: reval.Report):
    k, v, h = (reference_report.modes[m] for m in ("keyword", "vector", "hybrid"))
    # exact codes and names: keyword search is best
    assert k.scores("exact").mrr > v.scores("exact").mrr + 0.4
    assert k.scores("exact").mrr >= h.scores("exact").mrr
    # paraphrases without shared words: vector search is best
    assert v.scores("paraphrase").mrr > k.scores("paraphrase").mrr + 0.4
    assert v.scores("paraphrase").mrr >= h.scores("paraphrase").mrr
    # a name plus a need: hybrid finds the most; its first hit is about as high as keyword search's
    # (where the 64-dimension vectors miss, fusion cannot do better than the keyword list alone)
    assert h.scores("mixed").recall > max(k.scores("mixed").recall, v.scores("mixed").recall)
    assert h.scores("mixed").mrr > v.scores("mixed").mrr + 0.1
    assert h.scores("mixed").mrr > k.scores("mixed").mrr - 0.03


def test_plain_or_keyword_search_is_what_hurts_fusion():
    """With a plain OR keyword list, RRF's consensus bias drags in chunks that share one common word."""
    docs, queries = reval.load_documents(), reval.load_queries()
    paraphrases = [q for q in queries if q["kind"] == "paraphrase"]
    strict = reval.evaluate(reval.LocalReference(docs, min_match=2).search, paraphrases, ["hybrid"])
    loose = reval.evaluate(reval.LocalReference(docs, min_match=1).search, paraphrases, ["hybrid"])
    assert strict.modes["hybrid"].mrr > loose.modes["hybrid"].mrr + 0.1


def test_server_vectors_give_the_same_figures(llm: ScriptedLLM, reference_report: reval.Report):
    docs, queries = reval.load_documents(), reval.load_queries()[::4]
    remote = reval.LocalReference(docs, embed_many=reval.http_embedder(f"{llm.url}/v1"))
    report = reval.evaluate(remote.search, queries, ["vector", "hybrid"])
    local = reval.evaluate(reval.LocalReference(docs).search, queries, ["vector", "hybrid"])
    for mode in ("vector", "hybrid"):
        assert [r.ranked for r in report.modes[mode].results] == [r.ranked for r in local.modes[mode].results]


# ---------------------------------------------------------------------------
# HttpMemory against a stand-in for the worker's memory API
# ---------------------------------------------------------------------------


class _FakeMemoryApi:
    """Serves the memory API shape from a LocalReference, to exercise HttpMemory."""

    def __init__(self, token: str):
        self.token = token
        self.docs: dict[str, dict[str, dict]] = {}
        self.reference: dict[str, reval.LocalReference] = {}
        self.calls: list[tuple[str, str, dict]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes

            def log_message(self, *args):
                pass

            def _reply(self, status: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                api.calls.append((self.command, self.path, body))
                if self.headers.get("Authorization") != f"Bearer {api.token}":
                    return self._reply(401, {"error": "unauthorized"})
                parts = [unquote(p) for p in self.path.split("/")]  # '', api, memory, ns, documents, id
                if self.command == "PUT" and len(parts) == 6 and parts[4] == "documents":
                    ns, doc_id = parts[3], parts[5]
                    api.docs.setdefault(ns, {})[doc_id] = {"id": doc_id, **body}
                    api.reference.pop(ns, None)
                    return self._reply(200, {"document_id": doc_id, "chunks": 1})
                if self.command == "POST" and len(parts) == 5 and parts[4] == "search":
                    ns = parts[3]
                    if ns not in api.reference:
                        api.reference[ns] = reval.LocalReference(list(api.docs.get(ns, {}).values()))
                    results = api.reference[ns].search_chunks(body["query"], body["mode"], body["k"])
                    # two chunks of the same document in a row, as a chunking worker may return
                    if results:
                        results.insert(1, dict(results[0], chunk_index=1))
                    return self._reply(200, {"results": results[: body["k"]]})
                return self._reply(404, {"error": "no route"})

            do_PUT = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_http_memory_adapter_round_trip():
    api = _FakeMemoryApi("tok-eval")
    try:
        docs = reval.load_documents()
        queries = reval.load_queries()[::3]
        with reval.HttpMemory(api.url, "tok-eval", "eval space") as memory:
            assert memory.load(docs) == len(docs)
            method, path, body = api.calls[0]
            assert method == "PUT" and path == f"/api/memory/eval%20space/documents/{docs[0]['id']}"
            assert set(body) == {"title", "text", "metadata"} and body["metadata"] == docs[0]["metadata"]
            ids = memory.search("reset a tripped breaker", "hybrid", 5)
            assert len(ids) == len(set(ids)) == 5
            method, path, body = api.calls[-1]
            assert (method, path) == ("POST", "/api/memory/eval%20space/search")
            assert body == {"query": "reset a tripped breaker", "k": 15, "mode": "hybrid"}
            over_http = reval.evaluate(memory.search, queries)
        local = reval.evaluate(reval.LocalReference(docs).search, queries)
        for mode in reval.MODES:
            assert over_http.modes[mode].recall == pytest.approx(local.modes[mode].recall)
            assert over_http.modes[mode].mrr == pytest.approx(local.modes[mode].mrr)
        with reval.HttpMemory(api.url, "wrong-token", "eval space") as memory:
            with pytest.raises(RuntimeError, match="401"):
                memory.search("anything", "hybrid", 5)
    finally:
        api.close()


def test_cli_reports_json_and_enforces_the_margin():
    script = str(TESTS_DIR / "retrieval_eval.py")
    out = subprocess.run([sys.executable, script, "--json", "--min-margin", str(MARGIN)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert set(report["modes"]) == {"keyword", "vector", "hybrid"}
    assert report["hybrid_margin"]["recall"] >= MARGIN and report["hybrid_margin"]["mrr"] >= MARGIN
    assert report["modes"]["hybrid"]["by_kind"]["mixed"]["queries"] > 0
    # an impossible margin fails
    out = subprocess.run([sys.executable, script, "--min-margin", "0.9"], capture_output=True, text=True)
    assert out.returncode == 1 and "keyword" in out.stdout
