"""Tool use: calculator, current_time, http_fetch, parallel calls, tool errors and the iteration limit."""

from __future__ import annotations

import json

from harness import expect
from harness.api import Api
from harness.llm_server import BIG_PAGE_BYTES, WEATHER_PAGE, ScriptedLLM

MAX_ITERATIONS = 4


def test_tools_are_declared_to_the_model(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    expect.ok_turn(api.send(sid, f"hi #nonce {nonce}"))
    (rec,) = llm.requests(nonce=nonce)
    tools = {t["function"]["name"]: t["function"] for t in rec["body"]["tools"]}
    assert {"calculator", "current_time", "http_fetch"} <= set(tools)
    assert all(t["type"] == "function" for t in rec["body"]["tools"])
    assert "expression" in tools["calculator"]["parameters"]["properties"]
    assert "timezone" in tools["current_time"]["parameters"]["properties"]
    assert "url" in tools["http_fetch"]["parameters"]["properties"]


def test_calculator_multi_step_json(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    body = expect.ok_turn(api.send(sid, f"#script calc #nonce {nonce} what is (17+25)*3?"))
    assert body["reply"] == "[openai] result: 126"
    assert body["iterations"] == 2
    (call,) = body["tool_calls"]
    assert call["name"] == "calculator"
    assert call["arguments"] == {"expression": "(17+25)*3"}
    assert call["output"] == "126"
    assert call["is_error"] is False

    # the second model call carried the assistant tool call and the tool result
    recs = llm.requests(nonce=nonce)
    assert [r["step"] for r in recs] == [0, 1]
    msgs = recs[1]["body"]["messages"]
    assistant = [m for m in msgs if m["role"] == "assistant"][-1]
    (tc,) = assistant["tool_calls"]
    assert tc["function"]["name"] == "calculator"
    assert json.loads(tc["function"]["arguments"]) == {"expression": "(17+25)*3"}
    tool_msg = msgs[-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == tc["id"]
    assert expect.openai_text(tool_msg["content"]) == "126"

    # and the whole exchange is in the session history
    history = expect.history_shape(api.history(sid), sid)
    assert expect.roles(history) == ["user", "assistant", "tool", "assistant"]
    _, asst, tool, final = history["messages"]
    assert [c["id"] for c in asst["tool_calls"]] == [tool["tool_call_id"]]
    assert tool["content"] == "126"
    assert final["content"] == "[openai] result: 126"
    assert {m["turn_id"] for m in history["messages"]} == {body["turn_id"]}


def test_calculator_sse_events(api: Api, sid: str):
    result = api.send_sse(sid, "#script calc please")
    final = expect.sse_turn(result)
    assert final["reply"] == "[openai] result: 126"
    names = result.names()
    started, finished = result.of("tool_call_started"), result.of("tool_call_finished")
    assert len(started) == len(finished) == 1
    assert started[0]["name"] == "calculator" and started[0]["arguments"] == {"expression": "(17+25)*3"}
    assert finished[0]["id"] == started[0]["id"] == final["tool_calls"][0]["id"]
    assert finished[0]["output"] == "126" and finished[0]["is_error"] is False
    assert isinstance(finished[0]["duration_ms"], int)
    assert names.index("tool_call_started") < names.index("tool_call_finished") < names.index("final")
    # text after the tool call forms the reply
    assert expect.deltas(result) == final["reply"]
    assert len(result.of("usage")) >= 1


def test_chained_tool_calls_use_earlier_results(api: Api, sid: str):
    body = expect.ok_turn(api.send(sid, "#script chain"))
    assert [(c["arguments"]["expression"], c["output"]) for c in body["tool_calls"]] == [("(17+25)*3", "126"), ("126+1", "127")]
    assert body["reply"] == "[openai] chain: 127"
    assert body["iterations"] == 3


def test_http_fetch_weather_page(api: Api, llm: ScriptedLLM, sid: str):
    url = f"{llm.url}/pages/weather"
    body = expect.ok_turn(api.send(sid, f"#script fetch #url {url} weather?"))
    (call,) = body["tool_calls"]
    assert call["name"] == "http_fetch"
    assert call["arguments"]["url"] == url
    assert call["is_error"] is False
    assert WEATHER_PAGE in call["output"]
    assert body["reply"] == f"[openai] fetched: {call['output']}"
    assert "Weather in Lisbon: sunny, 21 C." in body["reply"]


def test_http_fetch_of_a_huge_page_is_truncated(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    body = expect.ok_turn(api.send(sid, f"#script fetch #url {llm.url}/pages/big #nonce {nonce}"))
    (call,) = body["tool_calls"]
    assert call["output"], call
    assert len(call["output"].encode()) < BIG_PAGE_BYTES, "the 2 MB page must not reach the model whole"
    assert "0000000 the quick brown fox" in call["output"]
    second = llm.requests(nonce=nonce)[-1]
    assert second["body_chars"] < BIG_PAGE_BYTES


def test_parallel_tool_calls_sse(api: Api, sid: str):
    result = api.send_sse(sid, "#script parallel go")
    final = expect.sse_turn(result)
    names = result.names()
    started_at = [i for i, n in enumerate(names) if n == "tool_call_started"]
    finished_at = [i for i, n in enumerate(names) if n == "tool_call_finished"]
    assert len(started_at) == len(finished_at) == 3
    assert started_at[-1] < finished_at[0], f"all three calls start before any finishes: {names}"
    started = result.of("tool_call_started")
    assert [(s["name"], s["arguments"]) for s in started] == [
        ("calculator", {"expression": "2+2"}),
        ("calculator", {"expression": "3*3"}),
        ("current_time", {"timezone": "UTC"}),
    ]
    assert {f["id"] for f in result.of("tool_call_finished")} == {s["id"] for s in started}
    assert len({s["id"] for s in started}) == 3
    outputs = [c["output"] for c in final["tool_calls"]]
    assert outputs[:2] == ["4", "9"] and outputs[2]
    assert final["reply"] == "[openai] results: " + " | ".join(outputs)
    assert final["reply"].startswith("[openai] results: 4 | 9 | ")
    assert final["iterations"] == 2


def test_current_time_tool(api: Api, sid: str):
    body = expect.ok_turn(api.send(sid, "#script time what time is it in Tokyo?"))
    (call,) = body["tool_calls"]
    assert call["name"] == "current_time" and call["arguments"] == {"timezone": "Asia/Tokyo"}
    assert call["is_error"] is False
    assert any(ch.isdigit() for ch in call["output"]), call["output"]
    assert body["reply"] == f"[openai] time: {call['output']}"


def test_unknown_timezone_is_a_tool_error_fed_back(api: Api, sid: str):
    body = expect.ok_turn(api.send(sid, "#script time #tz Mars/Olympus_Mons when?"))
    (call,) = body["tool_calls"]
    assert call["is_error"] is True
    assert call["output"].strip()
    assert body["reply"] == f"[openai] time: {call['output']}"


def test_unknown_tool_error_is_fed_back(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    body = expect.ok_turn(api.send(sid, f"#script bad_tool #nonce {nonce}"))
    (call,) = body["tool_calls"]
    assert call["name"] == "no_such_tool"
    assert call["is_error"] is True
    assert call["output"].strip()
    assert body["reply"] == f"[openai] tool said: {call['output']}"
    # the model got the error as the tool result of that call
    last = llm.requests(nonce=nonce)[-1]["body"]["messages"][-1]
    assert last["role"] == "tool" and expect.openai_text(last["content"]) == call["output"]
    history = api.history(sid)
    assert history["turns"][-1]["status"] == "completed"


def test_iteration_limit(api: Api, llm: ScriptedLLM, sid: str, nonce: str):
    body = expect.ok_turn(api.send(sid, f"#script loop #nonce {nonce}"), status="limit_reached")
    assert body["iterations"] == MAX_ITERATIONS
    assert len(llm.requests(nonce=nonce)) == MAX_ITERATIONS
    assert MAX_ITERATIONS - 1 <= len(body["tool_calls"]) <= MAX_ITERATIONS
    assert all(c["name"] == "calculator" and c["output"] == "2" and not c["is_error"] for c in body["tool_calls"])
    history = expect.history_shape(api.history(sid), sid)
    assert history["turns"][-1]["status"] == "limit_reached"
    assert history["messages"][0]["role"] == "user"


def test_iteration_limit_sse(api: Api, sid: str):
    result = api.send_sse(sid, "#script loop")
    final = expect.sse_turn(result, status="limit_reached")
    assert final["iterations"] == MAX_ITERATIONS
    assert len(result.of("tool_call_started")) == len(final["tool_calls"])
