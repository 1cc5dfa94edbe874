"""Provider fallback, retries and broken streams - and that the session stays consistent afterwards."""

from __future__ import annotations

import time

import pytest

from harness import expect
from harness.api import Api
from harness.llm_server import ScriptedLLM

ANTHROPIC = "anthropic:claude-3-5-haiku-latest"
GEMINI = "gemini:gemini-2.0-flash"
BROKEN_STREAM_CODES = ("llm_stream_broken", "llm_unavailable")


def assert_failed_and_kept(api: Api, sid: str, content: str) -> dict:
    """After a failed turn: the user message is kept, the turn is failed, no assistant message."""
    history = expect.history_shape(api.history(sid), sid)
    assert expect.roles(history) == ["user"], history["messages"]
    (user,) = history["messages"]
    assert user["content"] == content
    last = history["turns"][-1]
    assert last["status"] == "failed", history["turns"]
    assert user["turn_id"] in {t["id"] for t in history["turns"] if t["status"] == "failed"}
    assert isinstance(last.get("error"), (str, dict)) and last["error"], last
    return history


def assert_recovered(api: Api, sid: str, content: str, reply: str) -> None:
    history = expect.history_shape(api.history(sid), sid)
    assert expect.roles(history) == ["user", "assistant"], history["messages"]
    assert [m["content"] for m in history["messages"]] == [content, reply]
    assert history["turns"][-1]["status"] == "completed"


# ---------------------------------------------------------------------------
# fallback between providers
# ---------------------------------------------------------------------------


def test_fallback_to_anthropic(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    body = expect.ok_turn(api.send(sid, f"#down openai #nonce {nonce} hello"))
    assert body["reply"] == "[anthropic] echo: hello"
    assert body["model"] == ANTHROPIC
    recs = llm.requests(nonce=nonce)
    assert recs[0]["wire"] == "openai" and recs[0]["status"] == 503
    assert all(r["status"] == 503 for r in recs if r["wire"] == "openai")
    last = recs[-1]
    assert (last["wire"], last["status"], last["model"]) == ("anthropic", 200, "claude-3-5-haiku-latest")
    headers = last["headers"]
    assert headers.get("x-api-key") == "test-anthropic-key" or headers.get("authorization") == "Bearer test-anthropic-key"
    assert headers.get("anthropic-version")
    assert isinstance(last["body"].get("max_tokens"), int) and last["body"]["max_tokens"] > 0


def test_fallback_to_gemini(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    body = expect.ok_turn(api.send(sid, f"#down openai,anthropic #nonce {nonce} hello"))
    assert body["reply"] == "[gemini] echo: hello"
    assert body["model"] == GEMINI
    recs = llm.requests(nonce=nonce)
    assert {r["wire"] for r in recs} == {"openai", "anthropic", "gemini"}
    last = recs[-1]
    assert last["wire"] == "gemini" and last["status"] == 200 and last["model"] == "gemini-2.0-flash"
    assert last["path"].startswith("/v1beta/models/gemini-2.0-flash:")
    assert last["headers"].get("x-goog-api-key") == "test-gemini-key" or "key=test-gemini-key" in last["path"]


def test_fallback_streams_from_anthropic(api: Api, sid: str):
    result = api.send_sse(sid, "#down openai streamed via claude")
    final = expect.sse_turn(result)
    assert final["reply"] == "[anthropic] echo: streamed via claude"
    assert final["model"] == ANTHROPIC
    assert expect.deltas(result) == final["reply"]
    assert result.of("usage")[-1]["model"] == ANTHROPIC


def test_fallback_streams_from_gemini(api: Api, sid: str):
    result = api.send_sse(sid, "#down openai,anthropic streamed via gemini")
    final = expect.sse_turn(result)
    assert final["reply"] == "[gemini] echo: streamed via gemini"
    assert expect.deltas(result) == final["reply"]


def test_tools_through_anthropic(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    body = expect.ok_turn(api.send(sid, f"#down openai #script calc #nonce {nonce}"))
    assert body["reply"] == "[anthropic] result: 126"
    assert body["tool_calls"][0]["output"] == "126"
    ant = [r for r in llm.requests(nonce=nonce, wire="anthropic") if r["status"] == 200]
    assert [r["step"] for r in ant] == [0, 1]
    declared = {t["name"] for t in ant[0]["body"]["tools"]}
    assert {"calculator", "current_time", "http_fetch"} <= declared
    assert all("input_schema" in t for t in ant[0]["body"]["tools"])
    msgs = ant[1]["body"]["messages"]
    tool_use = [b for b in msgs[-2]["content"] if b["type"] == "tool_use"]
    tool_result = [b for b in msgs[-1]["content"] if b["type"] == "tool_result"]
    assert msgs[-2]["role"] == "assistant" and msgs[-1]["role"] == "user"
    assert len(tool_use) == len(tool_result) == 1
    assert tool_result[0]["tool_use_id"] == tool_use[0]["id"]
    assert tool_use[0]["input"] == {"expression": "(17+25)*3"}


def test_parallel_tools_through_gemini(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    body = expect.ok_turn(api.send(sid, f"#down openai,anthropic #script parallel #nonce {nonce}"))
    outputs = [c["output"] for c in body["tool_calls"]]
    assert [c["name"] for c in body["tool_calls"]] == ["calculator", "calculator", "current_time"]
    assert outputs[:2] == ["4", "9"]
    assert body["reply"].startswith("[gemini] results: 4 | 9 | ")
    gem = [r for r in llm.requests(nonce=nonce, wire="gemini") if r["status"] == 200]
    decls = {d["name"] for t in gem[0]["body"]["tools"] for d in t.get("functionDeclarations", t.get("function_declarations", []))}
    assert {"calculator", "current_time", "http_fetch"} <= decls
    contents = gem[-1]["body"]["contents"]
    assert contents[-2]["role"] == "model"
    assert [p["functionCall"]["name"] for p in contents[-2]["parts"] if "functionCall" in p] == ["calculator", "calculator", "current_time"]
    responses = [p["functionResponse"] for p in contents[-1]["parts"] if "functionResponse" in p]
    assert [r["name"] for r in responses] == ["calculator", "calculator", "current_time"]


def test_all_providers_down_is_502_and_session_consistent(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    content = f"#down openai,anthropic,gemini #nonce {nonce} anyone there?"
    expect.api_error(api.send(sid, content), 502, "llm_unavailable")
    assert {r["wire"] for r in llm.requests(nonce=nonce)} == {"openai", "anthropic", "gemini"}
    assert_failed_and_kept(api, sid, content)

    # nothing changes by itself: retrying while still down fails again, without duplicating anything
    expect.api_error(api.retry(sid), 502, "llm_unavailable")
    assert_failed_and_kept(api, sid, content)

    llm.heal(nonce)
    body = expect.ok_turn(api.retry(sid))
    assert body["reply"] == "[openai] echo: anyone there?"
    assert_recovered(api, sid, content, body["reply"])


def test_all_providers_down_sse(api: Api, sid: str):
    content = "#down openai,anthropic,gemini streaming into the void"
    result = api.send_sse(sid, content)
    expect.sse_error(result, "llm_unavailable")
    assert_failed_and_kept(api, sid, content)


# ---------------------------------------------------------------------------
# retries on the same provider
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_rate_limit_honours_retry_after(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    start = time.monotonic()
    body = expect.ok_turn(api.send(sid, f"#script rate_limit #nonce {nonce} patience"))
    elapsed = time.monotonic() - start
    assert body["reply"] == "[openai] echo: patience"
    recs = llm.requests(nonce=nonce)
    assert [(r["wire"], r["status"]) for r in recs] == [("openai", 429), ("openai", 200)]
    assert recs[1]["t"] - recs[0]["t"] >= 0.95, "Retry-After: 1 was not honoured"
    assert elapsed >= 1.0


def test_server_error_then_success(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    body = expect.ok_turn(api.send(sid, f"#script error500 #nonce {nonce} once more"))
    assert body["reply"] == "[openai] echo: once more"
    recs = llm.requests(nonce=nonce)
    assert [(r["wire"], r["status"]) for r in recs] == [("openai", 500), ("openai", 200)]
    history = api.history(sid)
    assert expect.roles(history) == ["user", "assistant"]
    assert [t["status"] for t in history["turns"]] == ["completed"]


def test_nothing_to_retry(api: Api, sid: str):
    expect.api_error(api.retry(sid), 409, "nothing_to_retry")  # empty session
    expect.ok_turn(api.send(sid, "fine"))
    expect.api_error(api.retry(sid), 409, "nothing_to_retry")  # last turn completed
    assert expect.roles(api.history(sid)) == ["user", "assistant"]


# ---------------------------------------------------------------------------
# broken and malformed streams
# ---------------------------------------------------------------------------


def test_cut_stream_json_then_retry(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    content = f"#script cut #nonce {nonce} tell me a long story"
    expect.api_error(api.send(sid, content), 502, BROKEN_STREAM_CODES)
    assert llm.requests(nonce=nonce), "the provider was called"
    assert_failed_and_kept(api, sid, content)
    llm.heal(nonce)
    body = expect.ok_turn(api.retry(sid))
    assert body["reply"] == "[openai] echo: tell me a long story"
    assert_recovered(api, sid, content, body["reply"])


def test_cut_stream_sse_then_retry(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    content = f"#script cut #nonce {nonce} stream a long story"
    result = api.send_sse(sid, content)
    expect.sse_error(result, BROKEN_STREAM_CODES)
    assert not result.of("final")
    assert_failed_and_kept(api, sid, content)
    llm.heal(nonce)
    body = expect.ok_turn(api.retry(sid))
    assert body["reply"] == "[openai] echo: stream a long story"
    assert_recovered(api, sid, content, body["reply"])


def test_cut_once_ends_in_a_completed_turn(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    """Only the first provider request is cut: the turn succeeds, either at once or via /retry."""
    content = f"#script cut_once #nonce {nonce} cut only once"
    resp = api.send(sid, content)
    if resp.status_code != 200:
        expect.api_error(resp, 502, BROKEN_STREAM_CODES)
        assert_failed_and_kept(api, sid, content)
        resp = api.retry(sid)
    body = expect.ok_turn(resp)
    assert body["reply"].endswith("echo: cut only once")
    assert llm.requests(nonce=nonce)[0]["outcome"] == "cut"
    assert_recovered(api, sid, content, body["reply"])


def test_malformed_stream_is_a_clear_error(api: Api, sid: str):
    content = "#script malformed give me garbage"
    err = expect.api_error(api.send(sid, content), 502)
    assert err["code"].startswith("llm_"), err
    assert_failed_and_kept(api, sid, content)


def test_malformed_stream_sse_is_a_clear_error(api: Api, sid: str):
    content = "#script malformed stream garbage"
    result = api.send_sse(sid, content)
    err = expect.sse_error(result)
    assert err["code"].startswith("llm_"), err
    assert_failed_and_kept(api, sid, content)


def test_slow_provider_still_answers(api: Api, sid: str):
    start = time.monotonic()
    body = expect.ok_turn(api.send(sid, "#slow 1500 take your time"))
    assert body["reply"] == "[openai] echo: take your time"
    assert time.monotonic() - start >= 1.5
