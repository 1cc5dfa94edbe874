"""Assertion helpers shared by the end-to-end tests."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Union

import httpx

from .api import SseResult

TURN_STATUSES = ("completed", "limit_reached", "awaiting_approval")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def api_error(resp: httpx.Response, status: int, code: Union[str, Iterable[str], None] = None) -> dict:
    """Assert ``resp`` is a JSON error ``{"error": {"code", "message"}}`` with that status (and code)."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text[:500]}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers.get("content-type")
    body = resp.json()
    return error_object(body.get("error") if isinstance(body, dict) else None, code)


def error_object(err: Any, code: Union[str, Iterable[str], None] = None) -> dict:
    assert isinstance(err, dict), f"not an error object: {err!r}"
    assert isinstance(err.get("code"), str) and err["code"], err
    assert isinstance(err.get("message"), str) and err["message"].strip(), err
    if isinstance(code, str):
        assert err["code"] == code, err
    elif code is not None:
        allowed = tuple(code)
        assert err["code"] in allowed, f"code {err['code']!r} not in {allowed}"
    return err


def turn(body: Any, status: Optional[str] = "completed") -> dict:
    """Check the shape of a turn result (JSON reply or the data of the SSE ``final`` event)."""
    assert isinstance(body, dict), body
    assert isinstance(body.get("turn_id"), str) and body["turn_id"], body
    assert body.get("status") in TURN_STATUSES, body
    if status is not None:
        assert body["status"] == status, body
    assert isinstance(body.get("reply"), str), body
    assert isinstance(body.get("tool_calls"), list), body
    for call in body["tool_calls"]:
        assert isinstance(call.get("id"), str) and call["id"], call
        assert isinstance(call.get("name"), str) and call["name"], call
        assert isinstance(call.get("arguments"), dict), call
        assert isinstance(call.get("output"), str), call
        assert isinstance(call.get("is_error"), bool), call
        assert _is_int(call.get("duration_ms")) and call["duration_ms"] >= 0, call
    usage = body.get("usage")
    assert isinstance(usage, dict), body
    assert _is_int(usage.get("input_tokens")) and usage["input_tokens"] >= 0, usage
    assert _is_int(usage.get("output_tokens")) and usage["output_tokens"] >= 0, usage
    cost = body.get("cost_usd", "missing")
    assert cost is None or (isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0), body
    assert isinstance(body.get("model"), str) and ":" in body["model"], body
    assert _is_int(body.get("iterations")) and body["iterations"] >= 1, body
    return body


def ok_turn(resp: httpx.Response, status: Optional[str] = "completed") -> dict:
    assert resp.status_code == 200, f"expected 200, got {resp.status_code}: {resp.text[:500]}"
    return turn(resp.json(), status)


def sse_turn(result: SseResult, status: Optional[str] = "completed") -> dict:
    """Check a successful streamed turn; returns the ``final`` data."""
    assert result.status == 200 and result.is_sse, repr(result)
    assert result.transport_error is None, result.transport_error
    names = result.names()
    assert names and names[0] == "turn_started", names
    assert isinstance(result.events[0][1].get("turn_id"), str), result.events[0]
    event, data = result.terminal()
    assert event == "final", f"terminal event was {event}: {data}"
    assert names[-1] == "final", f"events after the terminal one: {names}"
    final = turn(data, status)
    assert final["turn_id"] == result.events[0][1]["turn_id"]
    return final


def sse_error(result: SseResult, codes: Union[str, Iterable[str], None] = None) -> dict:
    """A failed streamed turn: either a non-2xx JSON error or an SSE stream ending in one ``error`` event."""
    if result.is_sse:
        assert result.status == 200, repr(result)
        event, data = result.terminal()
        assert event == "error", f"expected an error event, got {event}: {data}"
        assert result.names()[-1] == "error", result.names()
        assert isinstance(data, dict), data
        return error_object(data.get("error", data), codes)
    assert result.status >= 400, repr(result)
    body = result.json()
    return error_object(body.get("error"), codes)


def deltas(result_or_events: Union[SseResult, list]) -> str:
    events = result_or_events.events if isinstance(result_or_events, SseResult) else result_or_events
    return "".join(d["text"] for e, d in events if e == "text_delta")


def openai_text(content: Any) -> str:
    """Text of an OpenAI message ``content`` (a string or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def roles(history: dict) -> list[str]:
    return [m["role"] for m in history["messages"]]


def history_shape(history: dict, session_id: str) -> dict:
    assert history.get("session_id") == session_id, history
    assert isinstance(history.get("messages"), list) and isinstance(history.get("turns"), list), history
    seqs = [m["seq"] for m in history["messages"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"seq not strictly increasing: {seqs}"
    turn_ids = {t["id"] for t in history["turns"]}
    for m in history["messages"]:
        assert m["role"] in ("user", "assistant", "tool"), m
        assert m.get("turn_id") in turn_ids, f"message {m} belongs to an unknown turn"
        assert m.get("created_at"), m
    for t in history["turns"]:
        assert t["status"] in ("running", "completed", "limit_reached", "failed"), t
    return history
