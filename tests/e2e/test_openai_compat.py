"""The OpenAI-compatible endpoint, driven by the official ``openai`` client."""

from __future__ import annotations

import openai
import pytest

from harness import expect
from harness.api import ALICE_TOKEN, BOB_TOKEN, Api
from harness.llm_server import ScriptedLLM


@pytest.fixture
def client(worker) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{worker.url}/v1", api_key=ALICE_TOKEN, max_retries=0, timeout=90)


def test_models_list_includes_edgeclaw(client: openai.OpenAI):
    ids = [m.id for m in client.models.list()]
    assert "edgeclaw" in ids


def test_non_streaming_stateless(client: openai.OpenAI, llm: ScriptedLLM, nonce: str):
    resp = client.chat.completions.create(model="edgeclaw", messages=[{"role": "user", "content": f"hello compat #nonce {nonce}"}])
    assert resp.object == "chat.completion"
    assert isinstance(resp.model, str) and resp.model
    assert resp.id
    choice = resp.choices[0]
    assert choice.index == 0 and choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "[openai] echo: hello compat"
    assert resp.usage is not None
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert resp.usage.completion_tokens == len(choice.message.content) // 4 + 1
    assert len(llm.requests(nonce=nonce)) == 1


def test_streaming(client: openai.OpenAI):
    stream = client.chat.completions.create(
        model="edgeclaw", messages=[{"role": "user", "content": "stream through the compat endpoint"}], stream=True
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[openai] echo: stream through the compat endpoint"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 2
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert len({c.id for c in chunks}) == 1


def test_streaming_with_usage(client: openai.OpenAI):
    chunks = list(
        client.chat.completions.create(
            model="edgeclaw",
            messages=[{"role": "user", "content": "usage please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = [c.usage for c in chunks if c.usage is not None]
    assert usage, "a usage chunk is sent when include_usage is set"
    assert usage[-1].completion_tokens == len("[openai] echo: usage please") // 4 + 1


def test_stateless_uses_the_given_messages(client: openai.OpenAI, llm: ScriptedLLM, nonce: str):
    resp = client.chat.completions.create(
        model="edgeclaw",
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": f"second question #nonce {nonce}"},
        ],
    )
    assert resp.choices[0].message.content == "[openai] echo: second question"
    (rec,) = llm.requests(nonce=nonce)
    sent = str(rec["body"]["messages"])
    assert "first question" in sent and "first answer" in sent
    # stateless: a second call without the history does not see it
    other = f"{nonce}b"
    client.chat.completions.create(model="edgeclaw", messages=[{"role": "user", "content": f"alone #nonce {other}"}])
    assert "first question" not in str(llm.requests(nonce=other)[0]["body"]["messages"])


def test_session_via_header(client: openai.OpenAI, api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    headers = {"X-Edgeclaw-Session": sid}
    r1 = client.chat.completions.create(model="edgeclaw", messages=[{"role": "user", "content": "header turn one"}], extra_headers=headers)
    assert r1.choices[0].message.content == "[openai] echo: header turn one"
    r2 = client.chat.completions.create(
        model="edgeclaw", messages=[{"role": "user", "content": f"header turn two #nonce {nonce}"}], extra_headers=headers
    )
    assert r2.choices[0].message.content == "[openai] echo: header turn two"
    # the session remembered turn one and sent it to the model
    assert "header turn one" in str(llm.requests(nonce=nonce)[0]["body"]["messages"])
    history = api.history(sid)
    assert expect.roles(history) == ["user", "assistant", "user", "assistant"]
    assert history["messages"][0]["content"] == "header turn one"


def test_session_via_user_field(client: openai.OpenAI, api: Api, sid: str):
    resp = client.chat.completions.create(model="edgeclaw", messages=[{"role": "user", "content": "user field turn"}], user=sid)
    assert resp.choices[0].message.content == "[openai] echo: user field turn"
    assert [m["content"] for m in api.history(sid)["messages"]] == ["user field turn", "[openai] echo: user field turn"]


def test_session_streaming_is_recorded(client: openai.OpenAI, api: Api, sid: str):
    chunks = list(
        client.chat.completions.create(
            model="edgeclaw", messages=[{"role": "user", "content": "streamed into a session"}], stream=True, extra_headers={"X-Edgeclaw-Session": sid}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[openai] echo: streamed into a session"
    assert [m["content"] for m in api.history(sid)["messages"]] == ["streamed into a session", text]


def test_tools_run_server_side(client: openai.OpenAI):
    resp = client.chat.completions.create(model="edgeclaw", messages=[{"role": "user", "content": "#script calc compute it"}])
    assert resp.choices[0].message.content == "[openai] result: 126"
    assert resp.choices[0].finish_reason == "stop"
    assert not resp.choices[0].message.tool_calls


def test_fallback_through_compat(client: openai.OpenAI):
    resp = client.chat.completions.create(model="edgeclaw", messages=[{"role": "user", "content": "#down openai compat fallback"}])
    assert resp.choices[0].message.content == "[anthropic] echo: compat fallback"


def test_provider_failure_is_an_api_error(client: openai.OpenAI):
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="edgeclaw", messages=[{"role": "user", "content": "#down openai,anthropic,gemini nobody"}])
    assert exc.value.status_code == 502
    assert exc.value.body["code"] == "llm_unavailable"


def test_bad_key_is_rejected(worker):
    bad = openai.OpenAI(base_url=f"{worker.url}/v1", api_key="tok-nobody", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as exc:
        bad.chat.completions.create(model="edgeclaw", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code == 401
    assert exc.value.body["code"] == "unauthorized"


def test_bob_and_alice_sessions_differ_on_compat(worker, api: Api, sid: str):
    bob = openai.OpenAI(base_url=f"{worker.url}/v1", api_key=BOB_TOKEN, max_retries=0)
    bob.chat.completions.create(model="edgeclaw", messages=[{"role": "user", "content": "bob via compat"}], user=sid)
    assert api.history(sid)["messages"] == []
    assert [m["content"] for m in api.as_token(BOB_TOKEN).history(sid)["messages"]][0] == "bob via compat"
