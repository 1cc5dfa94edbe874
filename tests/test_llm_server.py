"""Checks the scripted LLM server against the official OpenAI, Anthropic and Google SDKs.

No worker is needed: these tests make sure the fake speaks each wire format
faithfully enough for real clients, so the end-to-end tests exercise the
worker against realistic traffic.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from harness.api import parse_sse_lines
from harness.llm_server import BIG_PAGE_BYTES, WEATHER_PAGE, ScriptedLLM, parse_directives

TESTS_DIR = Path(__file__).resolve().parent


def new_nonce() -> str:
    return "n" + uuid.uuid4().hex[:12]


@pytest.fixture
def oai(llm: ScriptedLLM) -> openai.OpenAI:
    return openai.OpenAI(api_key="test-openai-key", base_url=f"{llm.url}/v1", max_retries=0, timeout=10)


@pytest.fixture
def claude(llm: ScriptedLLM) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test-anthropic-key", base_url=llm.url, max_retries=0, timeout=10)


@pytest.fixture
def gem(llm: ScriptedLLM) -> genai.Client:
    return genai.Client(
        api_key="test-gemini-key",
        http_options=gtypes.HttpOptions(
            base_url=llm.url, api_version="v1beta", retry_options=gtypes.HttpRetryOptions(attempts=1), timeout=10_000
        ),
    )


OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "calculator",
            "description": "Evaluate an arithmetic expression",
            "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
        },
    }
]


# ---------------------------------------------------------------------------
# scripting basics
# ---------------------------------------------------------------------------


def test_directives_are_removed_and_text_stripped():
    clean, d = parse_directives("  #script calc  hello #nonce abc world\n#down openai,gemini #slow 10 ")
    assert clean == "hello world"
    assert d == {"script": "calc", "nonce": "abc", "down": "openai,gemini", "slow": "10"}
    assert parse_directives("no directives here") == ("no directives here", {})


# ---------------------------------------------------------------------------
# OpenAI
# ---------------------------------------------------------------------------


def test_openai_non_streaming_echo_and_usage(oai: openai.OpenAI, llm: ScriptedLLM):
    n = new_nonce()
    resp = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "earlier question"},
            {"role": "assistant", "content": "earlier answer"},
            {"role": "user", "content": f"  hello there #nonce {n} "},
        ],
    )
    assert resp.object == "chat.completion"
    assert resp.model == "gpt-4o-mini"
    choice = resp.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "[openai] echo: hello there"
    assert choice.message.tool_calls is None
    assert resp.usage.completion_tokens == len(choice.message.content) // 4 + 1
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    (rec,) = llm.requests(nonce=n)
    assert rec["wire"] == "openai" and rec["stream"] is False and rec["model"] == "gpt-4o-mini"
    assert rec["headers"]["authorization"] == "Bearer test-openai-key"
    assert resp.usage.prompt_tokens == rec["body_chars"] // 4 + 1
    assert rec["status"] == 200 and rec["step"] == 0


def test_openai_non_streaming_tool_call_then_result(oai: openai.OpenAI):
    first = oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "#script calc what is it"}], tools=OPENAI_TOOLS
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "calculator"
    assert json.loads(call.function.arguments) == {"expression": "(17+25)*3"}

    second = oai.chat.completions.create(
        model="gpt-4o-mini",
        tools=OPENAI_TOOLS,
        messages=[
            {"role": "user", "content": "#script calc what is it"},
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "126"},
        ],
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "[openai] result: 126"


def test_openai_streaming_text_in_small_pieces_with_usage(oai: openai.OpenAI):
    text = "the quick brown fox jumps over the lazy dog"
    stream = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": text}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == f"[openai] echo: {text}"
    assert len(pieces) >= 10 and max(len(p) for p in pieces) <= 5
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len("".join(pieces)) // 4 + 1
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_streaming_without_include_usage_has_no_usage_chunk(oai: openai.OpenAI):
    chunks = list(oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_openai_streaming_parallel_tool_calls_assemble(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "#script parallel go"}], tools=OPENAI_TOOLS, stream=True
    )
    calls: dict[int, dict] = {}
    arg_pieces = 0
    finish = None
    for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for tc in choice.delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            if tc.id:
                slot["id"] = tc.id
            if tc.function and tc.function.name:
                slot["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                slot["arguments"] += tc.function.arguments
                arg_pieces += 1
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1, 2]
    assert [calls[i]["name"] for i in range(3)] == ["calculator", "calculator", "current_time"]
    assert [json.loads(calls[i]["arguments"]) for i in range(3)] == [
        {"expression": "2+2"},
        {"expression": "3*3"},
        {"timezone": "UTC"},
    ]
    assert len({calls[i]["id"] for i in range(3)}) == 3
    assert arg_pieces >= 15  # arguments arrive in many small pieces


def test_openai_parallel_results_are_matched_by_call_id(oai: openai.OpenAI):
    ids = ["call_a", "call_b", "call_c"]
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": ids[0], "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "2+2"}'}},
            {"id": ids[1], "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "3*3"}'}},
            {"id": ids[2], "type": "function", "function": {"name": "current_time", "arguments": '{"timezone": "UTC"}'}},
        ],
    }
    # results deliberately out of order: the script orders them by call id
    resp = oai.chat.completions.create(
        model="m",
        messages=[
            {"role": "user", "content": "#script parallel go"},
            assistant,
            {"role": "tool", "tool_call_id": ids[2], "content": "12:00 UTC"},
            {"role": "tool", "tool_call_id": ids[0], "content": "4"},
            {"role": "tool", "tool_call_id": ids[1], "content": "9"},
        ],
    )
    assert resp.choices[0].message.content == "[openai] results: 4 | 9 | 12:00 UTC"


def test_openai_bad_key_is_401(llm: ScriptedLLM):
    client = openai.OpenAI(api_key="wrong", base_url=f"{llm.url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as exc:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code == 401
    assert exc.value.body["code"] == "invalid_api_key"
    assert exc.value.body["type"] == "invalid_request_error"


def test_openai_rate_limit_once_per_nonce(oai: openai.OpenAI, llm: ScriptedLLM):
    n = new_nonce()
    msgs = [{"role": "user", "content": f"#script rate_limit #nonce {n} hello"}]
    with pytest.raises(openai.RateLimitError) as exc:
        oai.chat.completions.create(model="m", messages=msgs)
    assert exc.value.status_code == 429
    assert exc.value.response.headers["retry-after"] == "1"
    assert exc.value.body["code"] == "rate_limit_exceeded"
    again = oai.chat.completions.create(model="m", messages=msgs)
    assert again.choices[0].message.content == "[openai] echo: hello"
    assert [r["status"] for r in llm.requests(nonce=n)] == [429, 200]


def test_openai_sdk_retry_honours_retry_after(llm: ScriptedLLM):
    client = openai.OpenAI(api_key="test-openai-key", base_url=f"{llm.url}/v1", max_retries=2)
    n = new_nonce()
    start = time.monotonic()
    resp = client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"#script rate_limit #nonce {n} x"}])
    assert time.monotonic() - start >= 0.9
    assert resp.choices[0].message.content == "[openai] echo: x"
    recs = llm.requests(nonce=n)
    assert len(recs) == 2 and recs[1]["t"] - recs[0]["t"] >= 0.9


def test_openai_error500_once(oai: openai.OpenAI):
    n = new_nonce()
    msgs = [{"role": "user", "content": f"#script error500 #nonce {n} hi"}]
    with pytest.raises(openai.InternalServerError) as exc:
        oai.chat.completions.create(model="m", messages=msgs)
    assert exc.value.status_code == 500
    assert oai.chat.completions.create(model="m", messages=msgs).choices[0].message.content == "[openai] echo: hi"


def test_failure_scripts_without_nonce_always_fail(oai: openai.OpenAI):
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "#script error500 hi"}])


def test_down_only_affects_listed_wires(oai: openai.OpenAI, claude: anthropic.Anthropic):
    text = "#down openai,gemini hello"
    with pytest.raises(openai.InternalServerError) as exc:
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": text}])
    assert exc.value.status_code == 503
    msg = claude.messages.create(model="c", max_tokens=50, messages=[{"role": "user", "content": text}])
    assert msg.content[0].text == "[anthropic] echo: hello"


def test_heal_overrides_failure_directives(oai: openai.OpenAI, llm: ScriptedLLM):
    n = new_nonce()
    msgs = [{"role": "user", "content": f"#script cut #down openai #nonce {n} please"}]
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="m", messages=msgs)
    # heal over HTTP, as another process would
    assert httpx.post(f"{llm.url}/_heal", params={"nonce": n}).status_code == 200
    resp = oai.chat.completions.create(model="m", messages=msgs)
    assert resp.choices[0].message.content == "[openai] echo: please"


def test_openai_cut_stream_raises(oai: openai.OpenAI):
    stream = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "#script cut hi"}], stream=True)
    got = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                got.append(chunk.choices[0].delta.content)
    assert "".join(got) == "[openai] partial ans"


def test_openai_cut_non_streaming_raises(oai: openai.OpenAI):
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "#script cut hi"}])


def test_cut_once_cuts_only_the_first_request(oai: openai.OpenAI):
    n = new_nonce()
    msgs = [{"role": "user", "content": f"#script cut_once #nonce {n} yo"}]
    with pytest.raises(openai.APIConnectionError):
        list(oai.chat.completions.create(model="m", messages=msgs, stream=True))
    chunks = list(oai.chat.completions.create(model="m", messages=msgs, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "[openai] echo: yo"


def test_openai_malformed_stream_raises_after_valid_chunk(oai: openai.OpenAI):
    stream = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "#script malformed hi"}], stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    with pytest.raises(ValueError):  # json.JSONDecodeError
        for _ in stream:
            pass


def test_malformed_non_streaming_body_is_not_json(llm: ScriptedLLM):
    r = httpx.post(
        f"{llm.url}/v1/chat/completions",
        headers={"Authorization": "Bearer test-openai-key"},
        json={"model": "m", "messages": [{"role": "user", "content": "#script malformed hi"}]},
    )
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()


def test_streaming_is_flushed_incrementally(llm: ScriptedLLM):
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "#drip 40 incremental streaming check"}]}
    start = time.monotonic()
    arrivals = []
    with httpx.stream(
        "POST", f"{llm.url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer test-openai-key"}
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["transfer-encoding"] == "chunked"
        for line in r.iter_lines():
            if line.startswith("data:"):
                arrivals.append(time.monotonic() - start)
    total = arrivals[-1]
    assert total >= 0.4
    assert arrivals[0] < total / 3  # the first event did not wait for the last


# ---------------------------------------------------------------------------
# Anthropic
# ---------------------------------------------------------------------------

ANTHROPIC_TOOLS = [
    {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression",
        "input_schema": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
    }
]


def test_anthropic_non_streaming_text(claude: anthropic.Anthropic, llm: ScriptedLLM):
    n = new_nonce()
    msg = claude.messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=100,
        system=[{"type": "text", "text": "you are terse"}],
        messages=[{"role": "user", "content": [{"type": "text", "text": f"bonjour #nonce {n}"}]}],
    )
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.model == "claude-3-5-haiku-latest"
    assert msg.stop_reason == "end_turn"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "[anthropic] echo: bonjour"
    assert msg.usage.output_tokens == len(msg.content[0].text) // 4 + 1
    (rec,) = llm.requests(nonce=n)
    # this SDK generation authenticates with a bearer token; x-api-key is accepted as well
    assert rec["headers"].get("x-api-key") == "test-anthropic-key" or rec["headers"]["authorization"] == "Bearer test-anthropic-key"
    assert rec["headers"]["anthropic-version"] >= "2023-06-01"


def test_anthropic_non_streaming_tool_use_round_trip(claude: anthropic.Anthropic):
    first = claude.messages.create(
        model="c", max_tokens=100, tools=ANTHROPIC_TOOLS, messages=[{"role": "user", "content": "#script calc compute"}]
    )
    assert first.stop_reason == "tool_use"
    (block,) = first.content
    assert block.type == "tool_use" and block.name == "calculator" and block.id.startswith("toolu_")
    assert block.input == {"expression": "(17+25)*3"}
    second = claude.messages.create(
        model="c",
        max_tokens=100,
        tools=ANTHROPIC_TOOLS,
        messages=[
            {"role": "user", "content": "#script calc compute"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": [{"type": "text", "text": "126"}]}]},
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "[anthropic] result: 126"


def test_anthropic_streaming_text(claude: anthropic.Anthropic):
    with claude.messages.stream(model="c", max_tokens=100, messages=[{"role": "user", "content": "stream me please"}]) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    assert "".join(pieces) == "[anthropic] echo: stream me please"
    assert len(pieces) >= 8
    assert final.stop_reason == "end_turn"
    assert final.content[0].text == "[anthropic] echo: stream me please"
    assert final.usage.output_tokens == len(final.content[0].text) // 4 + 1
    assert final.usage.input_tokens > 0


def test_anthropic_streaming_parallel_tool_use(claude: anthropic.Anthropic, llm: ScriptedLLM):
    n = new_nonce()
    with claude.messages.stream(
        model="c", max_tokens=100, tools=ANTHROPIC_TOOLS, messages=[{"role": "user", "content": f"#script parallel #nonce {n}"}]
    ) as s:
        events = [e.type for e in s]
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [(b.name, b.input) for b in final.content] == [
        ("calculator", {"expression": "2+2"}),
        ("calculator", {"expression": "3*3"}),
        ("current_time", {"timezone": "UTC"}),
    ]
    assert events.count("input_json") >= 15
    raw = httpx.post(
        f"{llm.url}/v1/messages",
        headers={"x-api-key": "test-anthropic-key", "anthropic-version": "2023-06-01"},
        json={"model": "c", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "#script calc"}]},
    )
    names = [e for e, _ in parse_sse_lines(raw.text.splitlines())]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 1


def test_anthropic_auth_errors(llm: ScriptedLLM):
    bad = anthropic.Anthropic(api_key="nope", base_url=llm.url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as exc:
        bad.messages.create(model="c", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert exc.value.body["type"] == "error"
    assert exc.value.body["error"]["type"] == "authentication_error"
    body = {"model": "c", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    # the classic x-api-key header works, as long as anthropic-version is sent
    ok = httpx.post(f"{llm.url}/v1/messages", headers={"x-api-key": "test-anthropic-key", "anthropic-version": "2023-06-01"}, json=body)
    assert ok.status_code == 200 and ok.json()["content"][0]["text"] == "[anthropic] echo: hi"
    for headers in ({"x-api-key": "test-anthropic-key"}, {"x-api-key": "test-anthropic-key", "anthropic-version": "yesterday"}):
        r = httpx.post(f"{llm.url}/v1/messages", headers=headers, json=body)
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


def test_anthropic_rate_limit(claude: anthropic.Anthropic):
    n = new_nonce()
    with pytest.raises(anthropic.RateLimitError) as exc:
        claude.messages.create(model="c", max_tokens=10, messages=[{"role": "user", "content": f"#script rate_limit #nonce {n} hi"}])
    assert exc.value.response.headers["retry-after"] == "1"
    assert exc.value.body["error"]["type"] == "rate_limit_error"


def _broken_transfer(exc: BaseException) -> bool:
    """True for the transport errors an SDK surfaces when a body is cut short."""
    chain = [exc, exc.__cause__, exc.__context__]
    names = {type(e).__name__ for e in chain if e is not None}
    text = " ".join(str(e) for e in chain if e is not None).lower()
    return bool(names & {"APIConnectionError", "RemoteProtocolError", "ReadError"}) or "incomplete" in text


def test_anthropic_cut_stream_raises(claude: anthropic.Anthropic):
    text = []
    with pytest.raises(Exception) as exc:
        with claude.messages.stream(model="c", max_tokens=10, messages=[{"role": "user", "content": "#script cut hi"}]) as s:
            for piece in s.text_stream:
                text.append(piece)
    assert _broken_transfer(exc.value), repr(exc.value)
    assert "".join(text) == "[anthropic] partial ans"


# ---------------------------------------------------------------------------
# Gemini
# ---------------------------------------------------------------------------

GEMINI_TOOLS = [
    gtypes.Tool(
        function_declarations=[
            gtypes.FunctionDeclaration(
                name="calculator",
                description="Evaluate an arithmetic expression",
                parameters=gtypes.Schema(type="OBJECT", properties={"expression": gtypes.Schema(type="STRING")}),
            )
        ]
    )
]


def test_gemini_generate_content_text(gem: genai.Client, llm: ScriptedLLM):
    n = new_nonce()
    resp = gem.models.generate_content(
        model="gemini-2.0-flash",
        contents=f"hola mundo #nonce {n}",
        config=gtypes.GenerateContentConfig(system_instruction="be short"),
    )
    assert resp.text == "[gemini] echo: hola mundo"
    assert resp.candidates[0].finish_reason == gtypes.FinishReason.STOP
    um = resp.usage_metadata
    assert um.candidates_token_count == len(resp.text) // 4 + 1
    assert um.total_token_count == um.prompt_token_count + um.candidates_token_count
    (rec,) = llm.requests(nonce=n)
    assert rec["wire"] == "gemini" and rec["model"] == "gemini-2.0-flash" and rec["stream"] is False
    assert rec["path"].startswith("/v1beta/models/gemini-2.0-flash:generateContent")
    assert rec["headers"]["x-goog-api-key"] == "test-gemini-key"
    assert rec["body"]["systemInstruction"]["parts"][0]["text"] == "be short"


def test_gemini_function_call_round_trip(gem: genai.Client):
    first = gem.models.generate_content(
        model="gemini-2.0-flash", contents="#script calc go", config=gtypes.GenerateContentConfig(tools=GEMINI_TOOLS)
    )
    (fc,) = first.function_calls
    assert fc.name == "calculator" and fc.args == {"expression": "(17+25)*3"}
    second = gem.models.generate_content(
        model="gemini-2.0-flash",
        config=gtypes.GenerateContentConfig(tools=GEMINI_TOOLS),
        contents=[
            gtypes.Content(role="user", parts=[gtypes.Part(text="#script calc go")]),
            first.candidates[0].content,
            gtypes.Content(
                role="user",
                parts=[gtypes.Part(function_response=gtypes.FunctionResponse(name="calculator", response={"output": "126"}))],
            ),
        ],
    )
    assert second.text == "[gemini] result: 126"


def test_gemini_parallel_results_matched_by_name_in_order(gem: genai.Client):
    first = gem.models.generate_content(model="g", contents="#script parallel go")
    assert [(c.name, c.args) for c in first.function_calls] == [
        ("calculator", {"expression": "2+2"}),
        ("calculator", {"expression": "3*3"}),
        ("current_time", {"timezone": "UTC"}),
    ]
    responses = [
        gtypes.Part(function_response=gtypes.FunctionResponse(name="current_time", response={"output": "noon"})),
        gtypes.Part(function_response=gtypes.FunctionResponse(name="calculator", response={"output": "4"})),
        gtypes.Part(function_response=gtypes.FunctionResponse(name="calculator", response={"error": "boom"})),
    ]
    second = gem.models.generate_content(
        model="g",
        contents=[
            gtypes.Content(role="user", parts=[gtypes.Part(text="#script parallel go")]),
            first.candidates[0].content,
            gtypes.Content(role="user", parts=responses),
        ],
    )
    assert second.text == "[gemini] results: 4 | boom | noon"


def test_gemini_stream_text_and_function_calls(gem: genai.Client):
    chunks = list(gem.models.generate_content_stream(model="gemini-2.0-flash", contents="a streamed gemini answer"))
    assert len(chunks) >= 3
    assert "".join(c.text or "" for c in chunks) == "[gemini] echo: a streamed gemini answer"
    assert chunks[-1].usage_metadata is not None and chunks[-1].usage_metadata.total_token_count > 0
    assert chunks[-1].candidates[0].finish_reason == gtypes.FinishReason.STOP
    assert all(c.usage_metadata is None for c in chunks[:-1])

    calls = []
    for c in gem.models.generate_content_stream(model="gemini-2.0-flash", contents="#script parallel go"):
        calls.extend(c.function_calls or [])
    assert [c.name for c in calls] == ["calculator", "calculator", "current_time"]


def test_gemini_key_in_query_and_auth_error(llm: ScriptedLLM):
    body = {"contents": [{"role": "user", "parts": [{"text": "q"}]}]}
    ok = httpx.post(f"{llm.url}/v1beta/models/g:generateContent", params={"key": "test-gemini-key"}, json=body)
    assert ok.status_code == 200 and ok.json()["candidates"][0]["content"]["parts"][0]["text"] == "[gemini] echo: q"
    bad = genai.Client(
        api_key="wrong", http_options=gtypes.HttpOptions(base_url=llm.url, api_version="v1beta", retry_options=gtypes.HttpRetryOptions(attempts=1))
    )
    with pytest.raises(genai_errors.ClientError) as exc:
        bad.models.generate_content(model="g", contents="hi")
    assert exc.value.code == 403 and exc.value.status == "PERMISSION_DENIED"


def test_gemini_rate_limit_and_server_error(gem: genai.Client):
    with pytest.raises(genai_errors.ClientError) as exc:
        gem.models.generate_content(model="g", contents=f"#script rate_limit #nonce {new_nonce()} hi")
    assert exc.value.code == 429 and exc.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(genai_errors.ServerError) as exc2:
        gem.models.generate_content(model="g", contents="#down gemini hi")
    assert exc2.value.code == 503 and exc2.value.status == "UNAVAILABLE"


def test_gemini_cut_stream_raises(gem: genai.Client):
    got = []
    with pytest.raises(Exception) as exc:
        for c in gem.models.generate_content_stream(model="g", contents="#script cut hi"):
            got.append(c.text or "")
    assert _broken_transfer(exc.value), repr(exc.value)
    assert "".join(got).startswith("[gemini] partial")


def test_gemini_stream_without_alt_sse_is_a_json_array(llm: ScriptedLLM):
    r = httpx.post(
        f"{llm.url}/v1beta/models/g:streamGenerateContent",
        headers={"x-goog-api-key": "test-gemini-key"},
        json={"contents": [{"parts": [{"text": "array please"}]}]},
    )
    items = r.json()
    assert isinstance(items, list) and len(items) >= 2
    assert "".join(i["candidates"][0]["content"]["parts"][0]["text"] for i in items) == "[gemini] echo: array please"


# ---------------------------------------------------------------------------
# scripts across steps, pages, request log, CLI
# ---------------------------------------------------------------------------


def test_loop_never_finishes_and_step_counts_assistant_turns(oai: openai.OpenAI, llm: ScriptedLLM):
    n = new_nonce()
    messages: list = [{"role": "user", "content": f"#script loop #nonce {n}"}]
    for step in range(3):
        resp = oai.chat.completions.create(model="m", messages=messages)
        (call,) = resp.choices[0].message.tool_calls
        assert json.loads(call.function.arguments) == {"expression": "1+1"}
        messages += [resp.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "2"}]
    assert [r["step"] for r in llm.requests(nonce=n)] == [0, 1, 2]


def test_chain_time_fetch_and_bad_tool_scripts(oai: openai.OpenAI, llm: ScriptedLLM):
    def run(text: str, results: list[str]) -> tuple[list, str]:
        messages: list = [{"role": "user", "content": text}]
        seen = []
        for result in results:
            msg = oai.chat.completions.create(model="m", messages=messages).choices[0].message
            (call,) = msg.tool_calls
            seen.append((call.function.name, json.loads(call.function.arguments)))
            messages += [msg.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": result}]
        final = oai.chat.completions.create(model="m", messages=messages).choices[0].message
        assert final.tool_calls is None
        return seen, final.content

    seen, final = run("#script chain", ["126", "127"])
    assert seen == [("calculator", {"expression": "(17+25)*3"}), ("calculator", {"expression": "126+1"})]
    assert final == "[openai] chain: 127"
    seen, final = run("#script time #tz Europe/Lisbon", ["10:00"])
    assert seen == [("current_time", {"timezone": "Europe/Lisbon"})] and final == "[openai] time: 10:00"
    seen, final = run(f"#script fetch #url {llm.url}/pages/weather", [WEATHER_PAGE])
    assert seen == [("http_fetch", {"url": f"{llm.url}/pages/weather"})] and final == f"[openai] fetched: {WEATHER_PAGE}"
    seen, final = run("#script bad_tool", ["error: unknown tool"])
    assert seen == [("no_such_tool", {})] and final == "[openai] tool said: error: unknown tool"


def test_pages(llm: ScriptedLLM):
    weather = httpx.get(f"{llm.url}/pages/weather")
    assert weather.status_code == 200 and weather.text == WEATHER_PAGE
    assert weather.headers["content-type"].startswith("text/plain")
    big = httpx.get(f"{llm.url}/pages/big")
    assert len(big.content) == BIG_PAGE_BYTES
    echo = httpx.post(f"{llm.url}/pages/echo", content=b"payload")
    assert echo.text == "method=POST body=payload"
    assert httpx.get(f"{llm.url}/pages/status/418").status_code == 418
    assert httpx.get(f"{llm.url}/pages/nope").status_code == 404


def test_request_log_over_http(oai: openai.OpenAI, llm: ScriptedLLM):
    n = new_nonce()
    oai.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": f"#nonce {n} logged"}], stream=True).close()
    time.sleep(0.1)
    recs = httpx.get(f"{llm.url}/_requests", params={"nonce": n}).json()
    assert len(recs) == 1
    rec = recs[0]
    assert (rec["wire"], rec["path"], rec["model"], rec["stream"], rec["nonce"]) == ("openai", "/v1/chat/completions", "gpt-x", True, n)
    assert "body" not in rec and rec["headers"]["authorization"] == "Bearer test-openai-key"
    with_body = httpx.get(f"{llm.url}/_requests", params={"nonce": n, "body": "1"}).json()
    assert with_body[0]["body"]["messages"][0]["content"].endswith("logged")


def test_slow_directive_delays_the_answer(oai: openai.OpenAI):
    start = time.monotonic()
    oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "#slow 300 hi"}])
    assert time.monotonic() - start >= 0.3


def test_clear_resets_log_and_counters():
    with ScriptedLLM() as server:
        client = openai.OpenAI(api_key="test-openai-key", base_url=f"{server.url}/v1", max_retries=0)
        msgs = [{"role": "user", "content": "#script error500 #nonce k1 hi"}]
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=msgs)
        server.clear()
        assert server.requests() == []
        with pytest.raises(openai.InternalServerError):  # counter was reset: first request again
            client.chat.completions.create(model="m", messages=msgs)


def test_runs_as_a_module():
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.llm_server", "--port", "0"],
        cwd=str(TESTS_DIR),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/pages/weather", timeout=5).text == WEATHER_PAGE
    finally:
        proc.terminate()
        proc.wait(timeout=10)
