"""Sessions: persistence across a wrangler restart, concurrency within a session, deletion."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import expect
from harness.api import Api
from harness.llm_server import ScriptedLLM


@pytest.mark.slow
def test_history_survives_a_restart(worker_factory, llm: ScriptedLLM, sid: str, nonce: str):
    worker = worker_factory()
    api = Api(worker.url)
    first = expect.ok_turn(api.send(sid, "before the restart"))
    expect.ok_turn(api.send(sid, "#script calc and a tool call"))
    down_nonce = f"{nonce}-down"
    failed_content = f"#down openai,anthropic,gemini #nonce {down_nonce} a failed turn"
    expect.api_error(api.send(f"{sid}-failed", failed_content), 502, "llm_unavailable")
    before = expect.history_shape(api.history(sid), sid)
    before_failed = api.history(f"{sid}-failed")
    assert expect.roles(before) == ["user", "assistant", "user", "assistant", "tool", "assistant"]

    worker.restart()
    api = Api(worker.url)
    assert api.history(sid) == before
    assert api.history(f"{sid}-failed") == before_failed

    # the conversation goes on where it stopped, with the old messages sent to the model
    body = expect.ok_turn(api.send(sid, f"after the restart #nonce {nonce}"))
    assert body["reply"] == "[openai] echo: after the restart"
    assert body["turn_id"] != first["turn_id"]
    (rec,) = llm.requests(nonce=nonce)
    sent = str(rec["body"]["messages"])
    assert "before the restart" in sent and "[openai] result: 126" in sent
    after = expect.history_shape(api.history(sid), sid)
    assert after["messages"][: len(before["messages"])] == before["messages"]
    assert len(after["messages"]) == len(before["messages"]) + 2

    # a turn that failed before the restart can be retried after it
    assert before_failed["turns"][-1]["status"] == "failed"
    llm.heal(down_nonce)
    retried = expect.ok_turn(api.retry(f"{sid}-failed"))
    assert retried["reply"] == "[openai] echo: a failed turn"
    assert expect.roles(api.history(f"{sid}-failed")) == ["user", "assistant"]


def test_concurrent_messages_to_one_session(api: Api, sid: str):
    tag = uuid.uuid4().hex[:8]
    contents = [f"concurrent message {i} {tag}" for i in range(20)]

    def send(content: str):
        return content, api.send(sid, content)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(send, contents))

    for content, resp in results:
        body = expect.ok_turn(resp)
        assert body["reply"] == f"[openai] echo: {content}"

    history = expect.history_shape(api.history(sid), sid)
    msgs = history["messages"]
    assert len(msgs) == 40
    assert expect.roles(history) == ["user", "assistant"] * 20
    for user, assistant in zip(msgs[0::2], msgs[1::2]):
        assert assistant["content"] == f"[openai] echo: {user['content']}"
        assert assistant["turn_id"] == user["turn_id"]
    assert sorted(m["content"] for m in msgs[0::2]) == sorted(contents)
    assert len(history["turns"]) == 20
    assert all(t["status"] == "completed" for t in history["turns"])
    assert len({t["id"] for t in history["turns"]}) == 20


def test_concurrent_messages_to_many_sessions(api: Api, sid: str):
    sessions = [f"{sid}-{i}" for i in range(8)]

    def run(session: str):
        return [api.send(session, f"{session} turn {k}") for k in range(2)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        all_results = list(pool.map(run, sessions))
    for session, results in zip(sessions, all_results):
        for k, resp in enumerate(results):
            assert expect.ok_turn(resp)["reply"] == f"[openai] echo: {session} turn {k}"
        history = api.history(session)
        assert [m["content"] for m in history["messages"] if m["role"] == "user"] == [f"{session} turn 0", f"{session} turn 1"]


def test_delete_session(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    expect.ok_turn(api.send(sid, "to be forgotten"))
    expect.ok_turn(api.send(sid, "#script calc also forgotten"))
    resp = api.delete(f"/api/sessions/{sid}")
    assert resp.status_code == 200 and resp.json() == {"deleted": True}
    history = api.history(sid)
    assert history["messages"] == [] and history["turns"] == []

    # the id can be used again, starting from nothing
    body = expect.ok_turn(api.send(sid, f"fresh start #nonce {nonce}"))
    assert body["reply"] == "[openai] echo: fresh start"
    (rec,) = llm.requests(nonce=nonce)
    assert "to be forgotten" not in str(rec["body"]["messages"])
    assert expect.roles(api.history(sid)) == ["user", "assistant"]


def test_delete_unknown_session_is_fine(api: Api, sid: str):
    resp = api.delete(f"/api/sessions/{sid}")
    assert resp.status_code == 200 and resp.json() == {"deleted": True}


def test_long_session_ids_and_allowed_characters(api: Api):
    for session in ("A.b_c-9", "x" * 128, f"dots.and-dashes_{uuid.uuid4().hex}"):
        body = expect.ok_turn(api.send(session, "valid id"))
        assert body["reply"] == "[openai] echo: valid id"
        assert api.history(session)["session_id"] == session
        assert api.delete(f"/api/sessions/{session}").status_code == 200
