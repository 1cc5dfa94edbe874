"""Authentication, per-principal isolation and input validation of the HTTP API."""

from __future__ import annotations

import base64
import json

import pytest

from harness import expect
from harness.api import ALICE_TOKEN, Api


# ---------------------------------------------------------------------------
# auth
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("POST", "/api/sessions/{sid}/messages", {"content": "hi"}),
        ("GET", "/api/sessions/{sid}/messages", None),
        ("DELETE", "/api/sessions/{sid}", None),
        ("POST", "/api/sessions/{sid}/retry", None),
        ("POST", "/v1/chat/completions", {"model": "edgeclaw", "messages": [{"role": "user", "content": "hi"}]}),
        ("GET", "/v1/models", None),
    ],
)
def test_missing_token_is_401(api: Api, sid: str, method: str, path: str, body):
    kwargs = {} if body is None else {"json": body}
    resp = api.request(method, path.format(sid=sid), token=None, **kwargs)
    expect.api_error(resp, 401, "unauthorized")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer tok-mallory",
        "Bearer",
        f"Basic {base64.b64encode(f'alice:{ALICE_TOKEN}'.encode()).decode()}",
        ALICE_TOKEN,
        f"Bearer {ALICE_TOKEN}-but-longer",
        f"Bearer {ALICE_TOKEN[:-1]}",
    ],
)
def test_wrong_token_is_401(api: Api, sid: str, header: str):
    resp = api.post(f"/api/sessions/{sid}/messages", json={"content": "hi"}, token=None, headers={"Authorization": header})
    expect.api_error(resp, 401, "unauthorized")
    # nothing was stored for anybody
    assert api.history(sid)["messages"] == []


def test_principals_are_isolated(api: Api, bob: Api, sid: str):
    expect.ok_turn(api.send(sid, "alice's secret"))
    # bob sees nothing under the same id
    bob_view = bob.history(sid)
    assert bob_view["messages"] == [] and bob_view["turns"] == []
    # bob's own conversation under that id is separate
    expect.ok_turn(bob.send(sid, "bob's note"))
    assert [m["content"] for m in bob.history(sid)["messages"]] == ["bob's note", "[openai] echo: bob's note"]
    assert [m["content"] for m in api.history(sid)["messages"]] == ["alice's secret", "[openai] echo: alice's secret"]
    # bob deleting "his" session leaves alice's alone
    assert bob.delete(f"/api/sessions/{sid}").status_code == 200
    assert bob.history(sid)["messages"] == []
    assert len(api.history(sid)["messages"]) == 2
    # and bob cannot retry alice's turns
    expect.api_error(bob.retry(sid), 409, "nothing_to_retry")


# ---------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------


def test_malformed_json_is_400(api: Api, sid: str):
    for raw in (b'{"content": "unterminated', b"not json at all", b'{"content": "x",}'):
        resp = api.post(f"/api/sessions/{sid}/messages", content=raw, headers={"Content-Type": "application/json"})
        expect.api_error(resp, 400, "invalid_json")
    assert api.history(sid)["messages"] == []


@pytest.mark.parametrize("body", [{}, {"content": ""}, {"text": "wrong field"}])
def test_missing_or_empty_content_is_400(api: Api, sid: str, body):
    expect.api_error(api.post(f"/api/sessions/{sid}/messages", json=body), 400, "invalid_request")
    assert api.history(sid)["messages"] == []


@pytest.mark.parametrize("body", [{"content": None}, {"content": 42}, {"content": ["a"]}, ["content"], "content"])
def test_content_of_the_wrong_type_is_400(api: Api, sid: str, body):
    resp = api.post(f"/api/sessions/{sid}/messages", json=body)
    expect.api_error(resp, 400, ("invalid_request", "invalid_json"))


def test_body_over_one_mebibyte_is_413(api: Api, sid: str):
    big = json.dumps({"content": "x" * (2 * 1024 * 1024)}).encode()
    expect.api_error(api.post(f"/api/sessions/{sid}/messages", content=big, headers={"Content-Type": "application/json"}), 413, "payload_too_large")
    just_over = json.dumps({"content": "y" * (1024 * 1024 + 16)}).encode()
    expect.api_error(api.post(f"/api/sessions/{sid}/messages", content=just_over, headers={"Content-Type": "application/json"}), 413, "payload_too_large")
    assert api.history(sid)["messages"] == []


@pytest.mark.parametrize(
    "bad_id",
    ["has%20space", "x" * 129, "semi;colon", "%C3%BCnicode", "quote%22d", "star*", "plus+sign", "tilde~", "at@sign"],
)
def test_invalid_session_id_is_400(api: Api, bad_id: str):
    expect.api_error(api.send(bad_id, "hi"), 400, "invalid_session_id")
    expect.api_error(api.get(f"/api/sessions/{bad_id}/messages"), 400, "invalid_session_id")
    expect.api_error(api.delete(f"/api/sessions/{bad_id}"), 400, "invalid_session_id")


@pytest.mark.parametrize("path", ["/api/nope", "/api/sessions", "/nothing/here", "/api/sessions/abc/messages/extra", "/v1/embeddings"])
def test_unknown_route_is_404(api: Api, path: str):
    expect.api_error(api.get(path), 404, "not_found")


@pytest.mark.parametrize(
    "method,path",
    [
        ("PUT", "/api/sessions/{sid}/messages"),
        ("PATCH", "/api/sessions/{sid}/messages"),
        ("DELETE", "/api/sessions/{sid}/messages"),
        ("POST", "/api/sessions/{sid}"),
        ("GET", "/api/sessions/{sid}/retry"),
        ("POST", "/api/health"),
        ("DELETE", "/api/health"),
        ("GET", "/v1/chat/completions"),
    ],
)
def test_wrong_method_is_405(api: Api, sid: str, method: str, path: str):
    expect.api_error(api.request(method, path.format(sid=sid)), 405, "method_not_allowed")


def test_errors_do_not_leak_into_history(api: Api, sid: str):
    expect.api_error(api.post(f"/api/sessions/{sid}/messages", json={}), 400, "invalid_request")
    expect.ok_turn(api.send(sid, "the only message"))
    history = api.history(sid)
    assert [m["content"] for m in history["messages"]] == ["the only message", "[openai] echo: the only message"]
    assert len(history["turns"]) == 1
