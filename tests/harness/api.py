"""A small client for the worker's HTTP API (JSON and server-sent events)."""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, Iterator, Optional

import httpx

ALICE_TOKEN = "tok-alice"
BOB_TOKEN = "tok-bob-1"
DEFAULT_TOKEN = ALICE_TOKEN
_UNSET: Any = object()


def parse_sse_lines(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """Parse SSE text lines into (event, data) pairs; data is JSON-decoded when possible."""
    event: Optional[str] = None
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if line == "":
            if data or event is not None:
                yield _make_event(event, data)
            event, data = None, []
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
    if data or event is not None:
        yield _make_event(event, data)


def _make_event(event: Optional[str], data: list[str]) -> tuple[str, Any]:
    text = "\n".join(data)
    try:
        payload: Any = json.loads(text)
    except ValueError:
        payload = text
    return (event or "message", payload)


class SseResult:
    """The outcome of a request made with ``Accept: text/event-stream``."""

    def __init__(self, status: int, headers: httpx.Headers, events: list[tuple[str, Any]], times: list[float], body: str, error: Optional[str]):
        self.status = status
        self.headers = headers
        self.events = events
        self.times = times  # monotonic arrival time of each event
        self.body = body  # raw body when the response is not an event stream
        self.transport_error = error  # set when the connection broke while reading

    @property
    def is_sse(self) -> bool:
        return self.headers.get("content-type", "").startswith("text/event-stream")

    def json(self) -> Any:
        return json.loads(self.body)

    def names(self) -> list[str]:
        return [e for e, _ in self.events]

    def of(self, name: str) -> list[Any]:
        return [d for e, d in self.events if e == name]

    def terminal(self) -> tuple[str, Any]:
        """The single terminal event (``final`` or ``error``)."""
        terms = [(e, d) for e, d in self.events if e in ("final", "error")]
        assert len(terms) == 1, f"expected exactly one terminal event, got {self.names()}"
        return terms[0]

    def error(self) -> Optional[dict]:
        """The error object whether it came as a non-2xx JSON body or as an SSE ``error`` event."""
        if not self.is_sse:
            try:
                body = self.json()
            except ValueError:
                return None
            return body.get("error") if isinstance(body, dict) else None
        errs = self.of("error")
        if not errs:
            return None
        data = errs[-1]
        return data.get("error", data) if isinstance(data, dict) else {"code": None, "message": data}

    def __repr__(self) -> str:
        return f"SseResult(status={self.status}, events={self.names()!r}, body={self.body[:200]!r})"


class Api:
    """Thin wrapper around httpx for the worker API; ``token=None`` sends no Authorization."""

    def __init__(self, base_url: str, token: Optional[str] = DEFAULT_TOKEN, timeout: float = 90.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def as_token(self, token: Optional[str]) -> "Api":
        return Api(self.base_url, token, self.timeout)

    def _headers(self, token: Any, headers: Optional[dict]) -> dict:
        out: dict[str, str] = {}
        tok = self.token if token is _UNSET else token
        if tok is not None:
            out["Authorization"] = f"Bearer {tok}"
        out.update(headers or {})
        return out

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = _UNSET,
        content: Optional[bytes | str] = None,
        token: Any = _UNSET,
        headers: Optional[dict] = None,
    ) -> httpx.Response:
        kwargs: dict[str, Any] = {"headers": self._headers(token, headers)}
        if json is not _UNSET:
            kwargs["json"] = json
        if content is not None:
            kwargs["content"] = content
        with httpx.Client(timeout=self.timeout) as client:
            return client.request(method, self.base_url + path, **kwargs)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def sse_result(self, path: str, json: Any = _UNSET, *, token: Any = _UNSET, headers: Optional[dict] = None, method: str = "POST") -> SseResult:
        hdrs = {"Accept": "text/event-stream", **(headers or {})}
        kwargs: dict[str, Any] = {"headers": self._headers(token, hdrs)}
        if json is not _UNSET:
            kwargs["json"] = json
        events: list[tuple[str, Any]] = []
        times: list[float] = []
        body = ""
        error = None
        with httpx.Client(timeout=self.timeout) as client:
            with client.stream(method, self.base_url + path, **kwargs) as resp:
                if resp.headers.get("content-type", "").startswith("text/event-stream"):
                    try:
                        for ev in parse_sse_lines(resp.iter_lines()):
                            events.append(ev)
                            times.append(time.monotonic())
                    except httpx.HTTPError as e:  # connection broke mid-stream
                        error = f"{type(e).__name__}: {e}"
                else:
                    body = resp.read().decode("utf-8", "replace")
                return SseResult(resp.status_code, resp.headers, events, times, body, error)

    def sse(self, path: str, json: Any = _UNSET, **kw: Any) -> list[tuple[str, Any]]:
        """POST with ``Accept: text/event-stream``; returns the (event, data) pairs.  Requires a 200 stream."""
        result = self.sse_result(path, json, **kw)
        assert result.status == 200 and result.is_sse, f"expected a 200 event stream, got {result!r}"
        assert result.transport_error is None, result.transport_error
        return result.events

    # -- convenience for the session API ------------------------------------

    def send(self, session: str, content: str, **kw: Any) -> httpx.Response:
        return self.post(f"/api/sessions/{session}/messages", json={"content": content}, **kw)

    def send_sse(self, session: str, content: str, **kw: Any) -> SseResult:
        return self.sse_result(f"/api/sessions/{session}/messages", {"content": content}, **kw)

    def history(self, session: str, **kw: Any) -> dict:
        resp = self.get(f"/api/sessions/{session}/messages", **kw)
        assert resp.status_code == 200, f"GET history: {resp.status_code} {resp.text}"
        return resp.json()

    def retry(self, session: str, **kw: Any) -> httpx.Response:
        return self.post(f"/api/sessions/{session}/retry", **kw)
