"""Plain chat turns: JSON and SSE answers, usage, history and conversation memory."""

from __future__ import annotations

import uuid

from harness import expect
from harness.api import Api
from harness.llm_server import ScriptedLLM

PRIMARY = "openai:gpt-4o-mini"


def test_health_needs_no_auth(api: Api):
    resp = api.get("/api/health", token=None)
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok"
    assert isinstance(body["version"], str) and body["version"]


def test_plain_answer_json(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    body = expect.ok_turn(api.send(sid, f"Hello edge #nonce {nonce}"))
    assert body["reply"] == "[openai] echo: Hello edge"
    assert body["tool_calls"] == []
    assert body["model"] == PRIMARY
    assert body["iterations"] == 1

    (rec,) = llm.requests(nonce=nonce)
    assert rec["wire"] == "openai" and rec["model"] == "gpt-4o-mini" and rec["status"] == 200
    assert rec["headers"]["authorization"] == "Bearer test-openai-key"
    user_msgs = [m for m in rec["body"]["messages"] if m["role"] == "user"]
    assert expect.openai_text(user_msgs[-1]["content"]) == f"Hello edge #nonce {nonce}"
    # usage comes from the provider: the fake counts chars // 4 + 1
    assert body["usage"]["input_tokens"] == rec["body_chars"] // 4 + 1
    assert body["usage"]["output_tokens"] == len(body["reply"]) // 4 + 1


def test_plain_answer_sse_deltas_concatenate_to_reply(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    text = "tell me something streamed, in many small pieces please"
    result = api.send_sse(sid, f"{text} #nonce {nonce}")
    final = expect.sse_turn(result)
    assert final["reply"] == f"[openai] echo: {text}"
    assert final["model"] == PRIMARY
    names = result.names()
    assert names.count("text_delta") >= 2, names  # the provider streamed in small pieces
    assert expect.deltas(result) == final["reply"]
    assert names.index("text_delta") < names.index("final")
    usage_events = result.of("usage")
    assert usage_events, names
    assert usage_events[-1]["model"] == PRIMARY
    assert usage_events[-1]["output_tokens"] == len(final["reply"]) // 4 + 1
    assert final["usage"]["output_tokens"] == usage_events[-1]["output_tokens"]
    assert not result.of("error")
    assert len(llm.requests(nonce=nonce)) == 1


def test_json_and_sse_agree(api: Api, sid: str):
    a = expect.ok_turn(api.send(sid, "same question"))
    b = expect.sse_turn(api.send_sse(f"{sid}-b", "same question"))
    assert a["reply"] == b["reply"] == "[openai] echo: same question"
    assert set(a) == set(b)


def test_history_records_the_turns_in_order(api: Api, sid: str):
    first = expect.ok_turn(api.send(sid, "first message"))
    second = expect.ok_turn(api.send(sid, "second message"))
    assert first["turn_id"] != second["turn_id"]
    history = expect.history_shape(api.history(sid), sid)
    assert expect.roles(history) == ["user", "assistant", "user", "assistant"]
    assert [m["content"] for m in history["messages"]] == [
        "first message",
        "[openai] echo: first message",
        "second message",
        "[openai] echo: second message",
    ]
    assert [m["turn_id"] for m in history["messages"]] == [first["turn_id"]] * 2 + [second["turn_id"]] * 2
    assert [(t["id"], t["status"]) for t in history["turns"]] == [(first["turn_id"], "completed"), (second["turn_id"], "completed")]


def test_the_model_sees_the_earlier_conversation(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    marker = f"remember-{uuid.uuid4().hex[:8]}"
    expect.ok_turn(api.send(sid, f"my code word is {marker}"))
    expect.ok_turn(api.send(sid, f"what was it? #nonce {nonce}"))
    (rec,) = llm.requests(nonce=nonce)
    sent = str(rec["body"]["messages"])
    assert f"my code word is {marker}" in sent
    assert f"[openai] echo: my code word is {marker}" in sent
    roles = [m["role"] for m in rec["body"]["messages"] if m["role"] != "system"]
    assert roles == ["user", "assistant", "user"]


def test_unicode_survives_json_and_streaming(api: Api, sid: str):
    text = "héllo wörld 🌍 日本語テキスト — ñ ✓"
    body = expect.ok_turn(api.send(sid, text))
    assert body["reply"] == f"[openai] echo: {text}"
    result = api.send_sse(sid, text + " again")
    final = expect.sse_turn(result)
    assert expect.deltas(result) == final["reply"] == f"[openai] echo: {text} again"
    history = api.history(sid)
    assert history["messages"][0]["content"] == text


def test_sessions_do_not_share_history(api: Api, sid: str):
    other = f"{sid}-other"
    expect.ok_turn(api.send(sid, "only in the first"))
    expect.ok_turn(api.send(other, "only in the second"))
    assert [m["content"] for m in api.history(sid)["messages"]] == ["only in the first", "[openai] echo: only in the first"]
    assert [m["content"] for m in api.history(other)["messages"]] == ["only in the second", "[openai] echo: only in the second"]


def test_unknown_session_has_empty_history(api: Api, sid: str):
    history = api.history(sid)
    assert history["session_id"] == sid
    assert history["messages"] == [] and history["turns"] == []
