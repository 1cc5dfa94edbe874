"""Configuration seen from outside: a deployment without LLM keys, and the circuit breaker."""

from __future__ import annotations

from harness import expect
from harness.api import Api
from harness.llm_server import ScriptedLLM


def test_without_llm_keys_turns_say_which_variable_to_set(worker_factory, sid: str):
    worker = worker_factory({"OPENAI_API_KEY": None, "ANTHROPIC_API_KEY": None, "GEMINI_API_KEY": None})
    api = Api(worker.url)
    assert api.get("/api/health", token=None).json()["llm_configured"] is False

    message = expect.api_error(api.send(sid, "hello?"), 503, "llm_not_configured")["message"]
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        assert variable in message, message
    # the question is kept, so it can be retried once a key is set
    history = api.history(sid)
    assert [m["content"] for m in history["messages"]] == ["hello?"]
    assert history["turns"][-1]["status"] == "failed"


def test_a_failing_primary_trips_its_circuit(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    # three turns in one session whose primary keeps failing: each falls back to anthropic
    for i in range(3):
        body = expect.ok_turn(api.send(sid, f"#down openai #nonce {nonce}-{i} turn {i}"))
        assert body["model"].startswith("anthropic:")
        assert llm.requests(nonce=f"{nonce}-{i}", wire="openai"), "the primary was tried"
    # now the circuit is open: the next turn goes straight to the fallback
    body = expect.ok_turn(api.send(sid, f"#down openai #nonce {nonce}-3 turn 3"))
    assert body["reply"] == "[anthropic] echo: turn 3"
    assert llm.requests(nonce=f"{nonce}-3", wire="openai") == []
