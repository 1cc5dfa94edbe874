"""A scripted fake LLM server speaking the OpenAI, Anthropic and Gemini wire formats.

Standard library only.  It is used by the end-to-end tests (the worker under
``wrangler dev`` is pointed at it) and by benchmarks
(``python -m harness.llm_server --port N``).

Endpoints
---------
* ``POST /v1/chat/completions``                       OpenAI Chat Completions
* ``POST /v1/messages``                               Anthropic Messages
* ``POST /v1/embeddings``                             OpenAI Embeddings (see below)
* ``POST /v1beta/models/{model}:generateContent``       Gemini
* ``POST /v1beta/models/{model}:streamGenerateContent`` Gemini (``?alt=sse`` for SSE)
* ``GET  /pages/{name}``                              plain pages for the http_fetch tool
* ``GET  /_requests?nonce=X``                         recorded requests (``&body=1`` adds bodies)
* ``POST /_heal?nonce=X``                             make every later request of the nonce succeed
* ``POST /_clear``                                    forget recorded requests, counters and heals

Scripting
---------
Every request is normalised into a list of messages (user / assistant / tool).
The *last* user message that carries real user text (not tool results) drives
the reply.  Directives may appear anywhere in that text:

``#script NAME``   which script to play (default ``echo``)
``#nonce ID``      groups requests for per-nonce behaviour and for look-ups
``#down W[,W]``    requests on those wires (openai|anthropic|gemini) get a 503
``#slow MS``       sleep before answering
``#drip MS``       sleep between streamed events
``#url U``         URL for the ``fetch`` script
``#tz ZONE``       timezone for the ``time`` script
``#expr E``        expression for the ``calc`` script (no spaces)
``#call NAME``     tool for the ``tool`` script to call
``#args64 B``      its arguments: base64url of a JSON object
``#text64 B``      what the ``say`` script answers: base64url of UTF-8 text

``step`` is the number of assistant turns after that user message
(consecutive assistant messages count as one turn).  Every reply text starts
with ``[WIRE]`` so a test can tell which provider answered.

Scripts: ``echo``, ``say``, ``calc``, ``chain``, ``time``, ``fetch``, ``parallel``, ``tool``,
``loop``, ``bad_tool``, ``rate_limit``, ``error500``, ``cut``, ``cut_once``,
``malformed``, ``malformed_once``.  See ``SCRIPTS`` below.

Per-nonce counters: a request counts once it passes authentication, JSON
parsing and ``#down``.  "first request for the nonce" means count == 1.  The
failure scripts (``rate_limit``, ``error500``, ``cut_once``,
``malformed_once``) fail *every* request when no ``#nonce`` is given.  After
``heal(nonce)`` every failure directive of that nonce (``#down`` and all the
failure scripts) is ignored and the request is answered like ``echo`` - this
lets a test make a failed turn succeed on ``/retry``.

Embeddings
----------
``POST /v1/embeddings`` speaks the OpenAI wire format with the OpenAI key.
Vectors come from ``harness.embedding_model`` (deterministic, L2-normalised,
rounded to 6 decimals): ``{"model", "input": str | [str], "dimensions"?,
"encoding_format"?: "float" | "base64"}``.  ``dimensions`` defaults to 64 (at
most 3072); a model whose name ends in ``-d32`` always answers with 32
dimensions, whatever was asked, so a test can provoke a dimension mismatch.
Empty strings, token arrays and more than 2048 inputs are 400s.  Headers
instead of directives: ``x-fail-once: <nonce>`` makes the first request with
that nonce a 429 with ``Retry-After: 1`` (``heal(nonce)`` cancels it) and
``x-slow-ms: N`` delays the answer.  Requests are recorded with wire
``embeddings`` and nonce = the ``x-fail-once`` (or ``x-nonce``) header.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import re
import socket
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit

try:  # imported as harness.llm_server (the tests) or run with tests/ on sys.path
    from . import embedding_model
except ImportError:  # pragma: no cover - loaded as a top-level module
    import embedding_model  # type: ignore[no-redef]

WIRES = ("openai", "anthropic", "gemini")

OPENAI_KEY = "test-openai-key"
ANTHROPIC_KEY = "test-anthropic-key"
GEMINI_KEY = "test-gemini-key"
# the oldest anthropic-version accepted; any later YYYY-MM-DD date is fine
ANTHROPIC_MIN_VERSION = "2023-01-01"

WEATHER_PAGE = "Weather in Lisbon: sunny, 21 C."
BIG_PAGE_BYTES = 2 * 1024 * 1024

EMBEDDING_MAX_INPUTS = 2048
EMBEDDING_FIXED_DIMENSIONS_SUFFIX = "-d32"

FAILURE_SCRIPTS = frozenset({"rate_limit", "error500", "cut", "cut_once", "malformed", "malformed_once"})

_DIRECTIVE_RE = re.compile(r"\s*#(script|nonce|down|slow|drip|url|tz|expr|call|args64|text64)[ \t]+(\S+)")
_GEMINI_PATH_RE = re.compile(r"/(v1beta|v1)/models/([^/]+?):(generateContent|streamGenerateContent)")

_RECORDED_HEADERS = (
    "authorization",
    "x-api-key",
    "anthropic-version",
    "anthropic-beta",
    "x-goog-api-key",
    "content-type",
    "accept",
    "user-agent",
)


def _valid_anthropic_version(value: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) and value >= ANTHROPIC_MIN_VERSION


# ---------------------------------------------------------------------------
# Directives and normalised messages
# ---------------------------------------------------------------------------


def parse_directives(text: str) -> tuple[str, dict[str, str]]:
    """Split ``text`` into (clean text, directives).  Later directives win."""
    found: dict[str, str] = {}

    def grab(match: re.Match) -> str:
        found[match.group(1)] = match.group(2)
        return ""

    clean = _DIRECTIVE_RE.sub(grab, text or "")
    return clean.strip(), found


class Msg:
    """A provider-neutral message."""

    __slots__ = ("role", "text", "calls", "results")

    def __init__(self, role: str, text: str = "", calls=None, results=None):
        self.role = role  # system | user | assistant | tool
        self.text = text
        self.calls = calls or []  # [{id, name, args}]
        self.results = results or []  # [{id, name, content, is_error}]

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Msg({self.role!r}, {self.text[:40]!r}, calls={len(self.calls)}, results={len(self.results)})"


def _json_or_raw(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _openai_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
            elif isinstance(part, str):
                out.append(part)
        return "".join(out)
    return str(content)


def normalize_openai(body: dict) -> list[Msg]:
    msgs: list[Msg] = []
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        text = _openai_text(m.get("content"))
        if role in ("system", "developer"):
            msgs.append(Msg("system", text))
        elif role == "user":
            msgs.append(Msg("user", text))
        elif role == "assistant":
            calls = []
            for tc in m.get("tool_calls") or []:
                fn = tc.get("function") or {}
                calls.append({"id": tc.get("id"), "name": fn.get("name"), "args": _json_or_raw(fn.get("arguments"))})
            msgs.append(Msg("assistant", text, calls=calls))
        elif role in ("tool", "function"):
            msgs.append(
                Msg("tool", results=[{"id": m.get("tool_call_id"), "name": m.get("name"), "content": text, "is_error": False}])
            )
    return msgs


def _anthropic_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
    return str(content)


def normalize_anthropic(body: dict) -> list[Msg]:
    msgs: list[Msg] = []
    system = body.get("system")
    if system:
        msgs.append(Msg("system", _anthropic_text(system)))
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        content = m.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else (content or [])
        blocks = [b for b in blocks if isinstance(b, dict)]
        if role == "assistant":
            calls = [
                {"id": b.get("id"), "name": b.get("name"), "args": b.get("input")} for b in blocks if b.get("type") == "tool_use"
            ]
            msgs.append(Msg("assistant", _anthropic_text(blocks), calls=calls))
        elif role == "user":
            results = [
                {
                    "id": b.get("tool_use_id"),
                    "name": None,
                    "content": _anthropic_text(b.get("content")),
                    "is_error": bool(b.get("is_error")),
                }
                for b in blocks
                if b.get("type") == "tool_result"
            ]
            if results:
                msgs.append(Msg("tool", results=results))
            else:
                msgs.append(Msg("user", _anthropic_text(blocks)))
    return msgs


def _gemini_result_text(response: Any) -> tuple[str, bool]:
    """Extract the tool output from a Gemini functionResponse.response object."""
    if isinstance(response, str):
        return response, False
    if isinstance(response, dict):
        is_error = "error" in response and "output" not in response and "result" not in response
        for key in ("output", "result", "content", "error", "text"):
            if isinstance(response.get(key), str):
                return response[key], is_error
        if len(response) == 1:
            (value,) = response.values()
            if isinstance(value, str):
                return value, is_error
            return json.dumps(value, ensure_ascii=False, separators=(",", ":")), is_error
    return json.dumps(response, ensure_ascii=False, separators=(",", ":")), False


def normalize_gemini(body: dict) -> list[Msg]:
    msgs: list[Msg] = []
    sys_inst = body.get("systemInstruction") or body.get("system_instruction")
    if isinstance(sys_inst, dict):
        msgs.append(Msg("system", "".join(p.get("text", "") for p in sys_inst.get("parts") or [] if isinstance(p, dict))))
    elif isinstance(sys_inst, str):
        msgs.append(Msg("system", sys_inst))
    for c in body.get("contents") or []:
        if not isinstance(c, dict):
            continue
        role = c.get("role") or "user"
        parts = [p for p in c.get("parts") or [] if isinstance(p, dict)]
        text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))
        calls = [p["functionCall"] for p in parts if isinstance(p.get("functionCall"), dict)]
        responses = [p["functionResponse"] for p in parts if isinstance(p.get("functionResponse"), dict)]
        if role == "model":
            msgs.append(
                Msg("assistant", text, calls=[{"id": fc.get("id"), "name": fc.get("name"), "args": fc.get("args") or {}} for fc in calls])
            )
        elif responses:
            results = []
            for fr in responses:
                content, is_error = _gemini_result_text(fr.get("response"))
                results.append({"id": fr.get("id"), "name": fr.get("name"), "content": content, "is_error": is_error})
            msgs.append(Msg("tool", results=results))
        else:
            msgs.append(Msg("user", text))
    return msgs


NORMALIZERS = {"openai": normalize_openai, "anthropic": normalize_anthropic, "gemini": normalize_gemini}


class Context:
    """What a script sees about one request."""

    def __init__(self, wire: str, msgs: list[Msg], self_url: str):
        self.wire = wire
        self.self_url = self_url
        last_user = None
        for i, m in enumerate(msgs):
            if m.role == "user":
                last_user = i
        raw = msgs[last_user].text if last_user is not None else ""
        self.user_text_raw = raw
        self.text, self.directives = parse_directives(raw)
        after = msgs[last_user + 1 :] if last_user is not None else list(msgs)
        # step = number of assistant turns (runs of consecutive assistant messages)
        step = 0
        prev_assistant = False
        last_calls: list[dict] = []
        results: list[dict] = []
        for m in after:
            if m.role == "assistant":
                if not prev_assistant:
                    step += 1
                    last_calls = []
                    results = []
                last_calls.extend(m.calls)
                prev_assistant = True
            else:
                if m.role == "tool":
                    results.extend(m.results)
                prev_assistant = False
        self.step = step
        self.last_calls = last_calls
        self.results = results
        self.script = self.directives.get("script", "echo")
        self.nonce = self.directives.get("nonce")
        self.down = {w.strip().lower() for w in self.directives.get("down", "").split(",") if w.strip()}

    def ms(self, name: str) -> float:
        try:
            return max(0.0, float(self.directives.get(name, "0")) / 1000.0)
        except ValueError:
            return 0.0

    def tag(self, text: str) -> str:
        return f"[{self.wire}] {text}"

    def result_texts(self) -> list[str]:
        """Tool results in the order of the last assistant turn's calls."""
        pool = list(self.results)
        out = []
        for call in self.last_calls:
            pick = None
            if call.get("id"):
                pick = next((r for r in pool if r.get("id") and r["id"] == call["id"]), None)
            if pick is None and call.get("name"):
                pick = next((r for r in pool if r.get("name") == call["name"] and not r.get("id")), None)
                if pick is None:
                    pick = next((r for r in pool if r.get("name") == call["name"]), None)
            if pick is None and pool:
                pick = next((r for r in pool if not r.get("id") and not r.get("name")), None) or pool[0]
            if pick is not None:
                pool.remove(pick)
                out.append(pick["content"])
            else:
                out.append("(missing)")
        # results that were not matched to any call (should not happen)
        out.extend(r["content"] for r in pool)
        return out

    def first_result(self) -> str:
        texts = self.result_texts()
        return texts[0] if texts else "(no tool result)"


class Reply:
    """What the scripted model says: text and/or tool calls."""

    def __init__(self, text: str = "", calls: Optional[list[tuple[str, dict]]] = None):
        self.text = text
        self.calls = calls or []

    def completion_chars(self) -> int:
        return len(self.text) + sum(len(n) + len(json.dumps(a)) for n, a in self.calls)


# ---------------------------------------------------------------------------
# Scripts
# ---------------------------------------------------------------------------


def _script_echo(ctx: Context) -> Reply:
    return Reply(ctx.tag(f"echo: {ctx.text}"))


def _script_calc(ctx: Context) -> Reply:
    if ctx.step == 0:
        return Reply(calls=[("calculator", {"expression": ctx.directives.get("expr", "(17+25)*3")})])
    return Reply(ctx.tag(f"result: {ctx.first_result()}"))


def _script_chain(ctx: Context) -> Reply:
    # step 0: (17+25)*3 ; step 1: <previous result>+1 ; step 2: final with both.
    if ctx.step == 0:
        return Reply(calls=[("calculator", {"expression": "(17+25)*3"})])
    if ctx.step == 1:
        return Reply(calls=[("calculator", {"expression": f"{ctx.first_result().strip()}+1"})])
    return Reply(ctx.tag(f"chain: {ctx.first_result()}"))


def _script_time(ctx: Context) -> Reply:
    if ctx.step == 0:
        return Reply(calls=[("current_time", {"timezone": ctx.directives.get("tz", "Asia/Tokyo")})])
    return Reply(ctx.tag(f"time: {ctx.first_result()}"))


def _script_fetch(ctx: Context) -> Reply:
    if ctx.step == 0:
        url = ctx.directives.get("url") or f"{ctx.self_url}/pages/weather"
        return Reply(calls=[("http_fetch", {"url": url})])
    return Reply(ctx.tag(f"fetched: {ctx.first_result()}"))


def _script_parallel(ctx: Context) -> Reply:
    if ctx.step == 0:
        return Reply(
            calls=[
                ("calculator", {"expression": "2+2"}),
                ("calculator", {"expression": "3*3"}),
                ("current_time", {"timezone": "UTC"}),
            ]
        )
    return Reply(ctx.tag("results: " + " | ".join(ctx.result_texts())))


def _script_loop(ctx: Context) -> Reply:
    return Reply(calls=[("calculator", {"expression": "1+1"})])


def _script_bad_tool(ctx: Context) -> Reply:
    if ctx.step == 0:
        return Reply(calls=[("no_such_tool", {})])
    return Reply(ctx.tag(f"tool said: {ctx.first_result()}"))


def _script_tool(ctx: Context) -> Reply:
    if ctx.step == 0:
        args = json.loads(base64.urlsafe_b64decode(ctx.directives.get("args64", "e30=")))
        return Reply(calls=[(ctx.directives.get("call", "no_such_tool"), args)])
    return Reply(ctx.tag(f"tool said: {ctx.first_result()}"))


def _script_say(ctx: Context) -> Reply:
    return Reply(ctx.tag(base64.urlsafe_b64decode(ctx.directives.get("text64", "")).decode("utf-8", "replace")))


SCRIPTS = {
    "echo": _script_echo,
    "say": _script_say,
    "tool": _script_tool,
    "calc": _script_calc,
    "chain": _script_chain,
    "time": _script_time,
    "fetch": _script_fetch,
    "parallel": _script_parallel,
    "loop": _script_loop,
    "bad_tool": _script_bad_tool,
}
# failure scripts answer like echo once they stop failing
for _name in FAILURE_SCRIPTS:
    SCRIPTS[_name] = _script_echo


def say(text: str, nonce: str) -> str:
    """The directives that make the model answer ``text`` (which the message itself does not contain)."""
    return f"#script say #text64 {base64.urlsafe_b64encode(text.encode()).decode()} #nonce {nonce}"


def tool_call(name: str, args: dict, nonce: str) -> str:
    """The directives that make the model call tool ``name`` with ``args`` (then report its result)."""
    encoded = base64.urlsafe_b64encode(json.dumps(args).encode()).decode()
    return f"#script tool #call {name} #args64 {encoded} #nonce {nonce}"


def run_script(ctx: Context) -> Reply:
    fn = SCRIPTS.get(ctx.script)
    if fn is None:
        return Reply(ctx.tag(f"unknown script: {ctx.script}"))
    return fn(ctx)


# ---------------------------------------------------------------------------
# Wire rendering
# ---------------------------------------------------------------------------


def _pieces(text: str, sizes: tuple[int, ...], max_pieces: int = 400) -> list[str]:
    """Split text into small pieces cycling through ``sizes`` (bigger when text is huge)."""
    if not text:
        return []
    scale = max(1, len(text) // (max_pieces * max(sizes)) + 1)
    out, i, k = [], 0, 0
    while i < len(text):
        n = sizes[k % len(sizes)] * scale
        out.append(text[i : i + n])
        i += n
        k += 1
    return out


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _compact(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def wire_error(wire: str, status: int, message: str) -> dict:
    if wire == "openai":
        kinds = {
            400: ("invalid_request_error", None),
            401: ("invalid_request_error", "invalid_api_key"),
            404: ("invalid_request_error", "not_found"),
            429: ("requests", "rate_limit_exceeded"),
            500: ("server_error", None),
            503: ("server_error", "service_unavailable"),
        }
        etype, code = kinds.get(status, ("server_error", None))
        return {"error": {"message": message, "type": etype, "param": None, "code": code}}
    if wire == "anthropic":
        kinds = {
            400: "invalid_request_error",
            401: "authentication_error",
            404: "not_found_error",
            429: "rate_limit_error",
            500: "api_error",
            503: "overloaded_error",
        }
        return {"type": "error", "error": {"type": kinds.get(status, "api_error"), "message": message}}
    statuses = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
    }
    return {"error": {"code": status, "message": message, "status": statuses.get(status, "UNKNOWN")}}


class Rendered:
    """Usage and ids for one answer."""

    def __init__(self, wire: str, model: str, reply: Reply, prompt_chars: int):
        self.wire = wire
        self.model = model
        self.reply = reply
        self.prompt_tokens = prompt_chars // 4 + 1
        self.completion_tokens = reply.completion_chars() // 4 + 1
        self.created = int(time.time())
        self.id = _new_id({"openai": "chatcmpl-", "anthropic": "msg_", "gemini": "resp-"}[wire])
        prefix = {"openai": "call_", "anthropic": "toolu_", "gemini": ""}[wire]
        self.call_ids = [_new_id(prefix) if prefix else None for _ in reply.calls]


# --- OpenAI ---------------------------------------------------------------


def openai_json(r: Rendered) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": r.reply.text or None, "refusal": None}
    if r.reply.calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for cid, (name, args) in zip(r.call_ids, r.reply.calls)
        ]
    return {
        "id": r.id,
        "object": "chat.completion",
        "created": r.created,
        "model": r.model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if r.reply.calls else "stop"}
        ],
        "usage": {
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "total_tokens": r.prompt_tokens + r.completion_tokens,
        },
        "system_fingerprint": "fp_scripted",
    }


def _openai_chunk(r: Rendered, delta: dict, finish: Optional[str], include_usage: bool) -> dict:
    chunk = {
        "id": r.id,
        "object": "chat.completion.chunk",
        "created": r.created,
        "model": r.model,
        "system_fingerprint": "fp_scripted",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if include_usage:
        chunk["usage"] = None
    return chunk


def openai_stream(r: Rendered, include_usage: bool, text_override: Optional[str] = None) -> list[tuple[Optional[str], str]]:
    """Data lines (event is always None for OpenAI).  ``text_override`` is used for partial streams."""
    events: list[tuple[Optional[str], str]] = []
    text = r.reply.text if text_override is None else text_override

    def add(delta: dict, finish: Optional[str] = None) -> None:
        events.append((None, _compact(_openai_chunk(r, delta, finish, include_usage))))

    if text or text_override is not None:
        add({"role": "assistant", "content": ""})
    else:
        add({"role": "assistant", "content": None, "refusal": None})
    for piece in _pieces(text, (3, 4, 5)):
        add({"content": piece})
    if text_override is not None:
        return events
    for index, (cid, (name, args)) in enumerate(zip(r.call_ids, r.reply.calls)):
        add({"tool_calls": [{"index": index, "id": cid, "type": "function", "function": {"name": name, "arguments": ""}}]})
        for piece in _pieces(json.dumps(args), (2, 3, 4)):
            add({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    add({}, "tool_calls" if r.reply.calls else "stop")
    if include_usage:
        usage_chunk = _openai_chunk(r, {}, None, True)
        usage_chunk["choices"] = []
        usage_chunk["usage"] = {
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "total_tokens": r.prompt_tokens + r.completion_tokens,
        }
        events.append((None, _compact(usage_chunk)))
    events.append((None, "[DONE]"))
    return events


# --- Anthropic ------------------------------------------------------------


def anthropic_json(r: Rendered) -> dict:
    content: list[dict] = []
    if r.reply.text:
        content.append({"type": "text", "text": r.reply.text})
    for cid, (name, args) in zip(r.call_ids, r.reply.calls):
        content.append({"type": "tool_use", "id": cid, "name": name, "input": args})
    return {
        "id": r.id,
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": content,
        "stop_reason": "tool_use" if r.reply.calls else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": r.prompt_tokens, "output_tokens": r.completion_tokens},
    }


def anthropic_stream(r: Rendered, text_override: Optional[str] = None) -> list[tuple[Optional[str], str]]:
    events: list[tuple[Optional[str], str]] = []

    def add(obj: dict) -> None:
        events.append((obj["type"], _compact(obj)))

    add(
        {
            "type": "message_start",
            "message": {
                "id": r.id,
                "type": "message",
                "role": "assistant",
                "model": r.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": r.prompt_tokens, "output_tokens": 1},
            },
        }
    )
    add({"type": "ping"})
    text = r.reply.text if text_override is None else text_override
    index = 0
    if text or text_override is not None:
        add({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
        for piece in _pieces(text, (3, 4, 5)):
            add({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}})
        if text_override is not None:
            return events
        add({"type": "content_block_stop", "index": index})
        index += 1
    for cid, (name, args) in zip(r.call_ids, r.reply.calls):
        add({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": cid, "name": name, "input": {}}})
        for piece in _pieces(json.dumps(args), (2, 3, 4)):
            add({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}})
        add({"type": "content_block_stop", "index": index})
        index += 1
    add(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use" if r.reply.calls else "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": r.completion_tokens},
        }
    )
    add({"type": "message_stop"})
    return events


# --- Gemini ---------------------------------------------------------------


def _gemini_usage(r: Rendered) -> dict:
    return {
        "promptTokenCount": r.prompt_tokens,
        "candidatesTokenCount": r.completion_tokens,
        "totalTokenCount": r.prompt_tokens + r.completion_tokens,
    }


def _gemini_parts(r: Rendered, text: str, with_calls: bool) -> list[dict]:
    parts: list[dict] = []
    if text:
        parts.append({"text": text})
    if with_calls:
        parts.extend({"functionCall": {"name": name, "args": args}} for name, args in r.reply.calls)
    return parts


def _gemini_response(r: Rendered, parts: list[dict], final: bool) -> dict:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    out: dict[str, Any] = {"candidates": [candidate]}
    if final:
        candidate["finishReason"] = "STOP"
        out["usageMetadata"] = _gemini_usage(r)
    out["modelVersion"] = r.model
    out["responseId"] = r.id
    return out


def gemini_json(r: Rendered) -> dict:
    return _gemini_response(r, _gemini_parts(r, r.reply.text, True), True)


def gemini_stream(r: Rendered, text_override: Optional[str] = None) -> list[tuple[Optional[str], str]]:
    text = r.reply.text if text_override is None else text_override
    pieces = _pieces(text, (6, 8, 7))
    objs: list[dict] = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1 and not r.reply.calls and text_override is None
        objs.append(_gemini_response(r, [{"text": piece}], last))
    if text_override is None and (r.reply.calls or not pieces):
        objs.append(_gemini_response(r, _gemini_parts(r, "", True), True))
    return [(None, _compact(o)) for o in objs]


# ---------------------------------------------------------------------------
# HTTP server
# ---------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ScriptedLLM/1.0"
    # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and delayed
    # ACKs add ~40 ms to every answer
    disable_nagle_algorithm = True
    llm: "ScriptedLLM"  # set on the subclass made by ScriptedLLM

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default logging
        pass

    # -- plumbing ----------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until an empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_bytes(self, status: int, data: bytes, content_type: str, headers: Optional[dict] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_json(self, status: int, obj: Any, headers: Optional[dict] = None) -> None:
        self._send_bytes(status, json.dumps(obj).encode("utf-8"), "application/json", headers)

    def _start_stream(self, headers: Optional[dict] = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _sse(self, event: Optional[str], data: str) -> None:
        text = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
        self._chunk(text.encode("utf-8"))

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _abort(self) -> None:
        """Close the connection mid-body (no terminating chunk / short body)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- dispatch ----------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _route(self) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        method = self.command
        if path.startswith("/pages/"):
            body = self._read_body()
            return self._serve_page(path[len("/pages/") :], query, body)
        if path == "/_requests" and method == "GET":
            self._read_body()
            nonce = (query.get("nonce") or [None])[0]
            with_body = (query.get("body") or ["0"])[0] in ("1", "true")
            recs = self.llm.requests(nonce=nonce)
            if not with_body:
                for rec in recs:
                    rec.pop("body", None)
            return self._send_json(200, recs)
        if path == "/_heal" and method == "POST":
            self._read_body()
            nonce = (query.get("nonce") or [""])[0]
            self.llm.heal(nonce)
            return self._send_json(200, {"healed": nonce})
        if path == "/_clear" and method == "POST":
            self._read_body()
            self.llm.clear()
            return self._send_json(200, {"cleared": True})
        if path == "/v1/chat/completions":
            return self._serve_llm("openai", None, None, query) if method == "POST" else self._not_allowed("openai")
        if path == "/v1/messages":
            return self._serve_llm("anthropic", None, None, query) if method == "POST" else self._not_allowed("anthropic")
        if path == "/v1/embeddings":
            return self._serve_embeddings() if method == "POST" else self._not_allowed("openai")
        m = _GEMINI_PATH_RE.fullmatch(path)
        if m:
            if method != "POST":
                return self._not_allowed("gemini")
            return self._serve_llm("gemini", m.group(2), m.group(3), query)
        self._read_body()
        self._send_json(404, {"error": {"code": 404, "message": f"no route for {method} {path}", "status": "NOT_FOUND"}})

    def _not_allowed(self, wire: str) -> None:
        self._read_body()
        self._send_json(405, wire_error(wire, 405, f"method {self.command} not allowed"))

    # -- pages -------------------------------------------------------------

    def _serve_page(self, name: str, query: dict, body: bytes) -> None:
        text_type = "text/plain; charset=utf-8"
        if name == "weather":
            return self._send_bytes(200, WEATHER_PAGE.encode(), text_type)
        if name == "big":
            return self._send_bytes(200, self.llm.big_page(), text_type)
        if name == "json":
            return self._send_json(200, {"city": "Lisbon", "sky": "sunny", "temp_c": 21})
        if name == "echo":
            text = f"method={self.command} body={body.decode('utf-8', 'replace')}"
            return self._send_bytes(200, text.encode("utf-8"), text_type)
        if name == "slow":
            try:
                delay = float((query.get("ms") or ["2000"])[0]) / 1000.0
            except ValueError:
                delay = 2.0
            time.sleep(min(delay, 60.0))
            return self._send_bytes(200, b"slow page done", text_type)
        m = re.fullmatch(r"status/(\d{3})", name)
        if m:
            code = int(m.group(1))
            return self._send_bytes(code, f"status {code}".encode(), text_type)
        self._send_bytes(404, f"no such page: {name}".encode(), text_type)

    # -- LLM endpoints -----------------------------------------------------

    def _authorised(self, wire: str, query: dict) -> Optional[tuple[int, str]]:
        h = self.headers
        if wire == "openai":
            if (h.get("Authorization") or "") != f"Bearer {OPENAI_KEY}":
                return 401, "Incorrect API key provided."
            return None
        if wire == "anthropic":
            # the classic x-api-key header, or a bearer token as newer SDKs send
            if (h.get("x-api-key") or "") != ANTHROPIC_KEY and (h.get("Authorization") or "") != f"Bearer {ANTHROPIC_KEY}":
                return 401, "invalid x-api-key"
            if not _valid_anthropic_version(h.get("anthropic-version") or ""):
                return 401, "missing or unsupported anthropic-version header"
            return None
        key = h.get("x-goog-api-key") or (query.get("key") or [""])[0]
        if key != GEMINI_KEY:
            return 403, "Method doesn't allow unregistered callers. Please use an API key."
        return None

    def _serve_llm(self, wire: str, gemini_model: Optional[str], gemini_action: Optional[str], query: dict) -> None:
        raw = self._read_body()
        raw_text = raw.decode("utf-8", "replace")
        try:
            body = json.loads(raw_text) if raw_text else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = None
        msgs: list[Msg] = []
        if body is not None:
            try:
                msgs = NORMALIZERS[wire](body)
            except Exception:  # malformed shapes: treat as no messages
                msgs = []
        ctx = Context(wire, msgs, self.llm.url)
        if wire == "gemini":
            model = gemini_model or ""
            stream = gemini_action == "streamGenerateContent"
            sse = stream and (query.get("alt") or [""])[0] == "sse"
        else:
            model = str((body or {}).get("model") or "")
            stream = bool((body or {}).get("stream") is True)
            sse = stream
        record = self.llm._record(
            {
                "wire": wire,
                "path": self.path,
                "method": self.command,
                "model": model,
                "stream": stream,
                "nonce": ctx.nonce,
                "script": ctx.script,
                "step": ctx.step,
                "user_text": ctx.text,
                "headers": {k: v for k, v in ((k, self.headers.get(k)) for k in _RECORDED_HEADERS) if v is not None},
                "body": body,
                "body_chars": len(raw_text),
                "status": None,
                "outcome": None,
            }
        )

        def finish(status: int, outcome: str) -> None:
            self.llm._update(record, status=status, outcome=outcome)

        denied = self._authorised(wire, query)
        if denied:
            finish(denied[0], "auth")
            return self._send_json(denied[0], wire_error(wire, denied[0], denied[1]))
        if body is None:
            finish(400, "bad_json")
            return self._send_json(400, wire_error(wire, 400, "request body is not a JSON object"))

        if ctx.ms("slow"):
            time.sleep(ctx.ms("slow"))

        healed = ctx.nonce is not None and self.llm.is_healed(ctx.nonce)
        if wire in ctx.down and not healed:
            finish(503, "down")
            return self._send_json(503, wire_error(wire, 503, f"{wire} is down (scripted)"))
        count = self.llm._count(ctx.nonce)
        script = ctx.script
        failing = not healed and script in FAILURE_SCRIPTS
        if failing and script in ("rate_limit", "error500", "cut_once", "malformed_once"):
            failing = ctx.nonce is None or count == 1
        if healed and script in FAILURE_SCRIPTS:
            ctx.script = "echo"

        if failing and script == "rate_limit":
            finish(429, "rate_limit")
            return self._send_json(429, wire_error(wire, 429, "Rate limit reached (scripted)"), {"Retry-After": "1"})
        if failing and script == "error500":
            finish(500, "error500")
            return self._send_json(500, wire_error(wire, 500, "Internal server error (scripted)"))

        reply = run_script(ctx)
        rendered = Rendered(wire, model, reply, len(raw_text))
        drip = ctx.ms("drip")

        if failing and script in ("cut", "cut_once"):
            finish(200, "cut")
            return self._cut(wire, rendered, stream, sse, body)
        if failing and script in ("malformed", "malformed_once"):
            finish(200, "malformed")
            return self._malformed(wire, rendered, stream, sse)

        finish(200, "ok")
        if not stream:
            renderer = {"openai": openai_json, "anthropic": anthropic_json, "gemini": gemini_json}[wire]
            return self._send_json(200, renderer(rendered))
        if wire == "gemini" and not sse:
            # streamGenerateContent without alt=sse: one JSON array of partial responses
            items = [json.loads(data) for _, data in gemini_stream(rendered)]
            return self._send_json(200, items)
        events = self._stream_events(wire, rendered, body)
        self._start_stream()
        for i, (event, data) in enumerate(events):
            if drip and i:
                time.sleep(drip)
            self._sse(event, data)
        self._end_stream()

    # -- embeddings --------------------------------------------------------

    def _serve_embeddings(self) -> None:
        raw = self._read_body()
        raw_text = raw.decode("utf-8", "replace")
        try:
            body = json.loads(raw_text) if raw_text else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = None
        h = self.headers
        fail_nonce = (h.get("x-fail-once") or "").strip() or None
        nonce = fail_nonce or (h.get("x-nonce") or "").strip() or None
        inputs = (body or {}).get("input")
        first = inputs if isinstance(inputs, str) else (inputs[0] if isinstance(inputs, list) and inputs else "")
        headers = {k: v for k, v in ((k, h.get(k)) for k in _RECORDED_HEADERS + ("x-fail-once", "x-nonce")) if v is not None}
        record = self.llm._record(
            {
                "wire": "embeddings",
                "path": self.path,
                "method": self.command,
                "model": str((body or {}).get("model") or ""),
                "stream": False,
                "nonce": nonce,
                "script": None,
                "step": 0,
                "user_text": first[:200] if isinstance(first, str) else "",
                "inputs": len(inputs) if isinstance(inputs, list) else (1 if isinstance(inputs, str) else 0),
                "dimensions": None,
                "headers": headers,
                "body": body,
                "body_chars": len(raw_text),
                "status": None,
                "outcome": None,
            }
        )

        def fail(status: int, outcome: str, message: str, extra: Optional[dict] = None) -> None:
            self.llm._update(record, status=status, outcome=outcome)
            self._send_json(status, wire_error("openai", status, message), extra)

        if (h.get("Authorization") or "") != f"Bearer {OPENAI_KEY}":
            return fail(401, "auth", "Incorrect API key provided.")
        if body is None:
            return fail(400, "bad_json", "request body is not a JSON object")
        try:
            delay = max(0.0, float(h.get("x-slow-ms") or 0) / 1000.0)
        except ValueError:
            delay = 0.0
        if delay:
            time.sleep(min(delay, 60.0))
        if fail_nonce and not self.llm.is_healed(fail_nonce) and self.llm._count("embeddings:" + fail_nonce) == 1:
            return fail(429, "rate_limit", "Rate limit reached for embeddings (scripted)", {"Retry-After": "1"})

        model = body.get("model")
        if not isinstance(model, str) or not model:
            return fail(400, "bad_request", "you must provide a model parameter")
        if isinstance(inputs, str):
            texts = [inputs]
        elif isinstance(inputs, list) and inputs and all(isinstance(t, str) for t in inputs):
            texts = list(inputs)
        elif isinstance(inputs, list) and not inputs:
            return fail(400, "bad_request", "'input' must not be an empty array")
        elif isinstance(inputs, list):
            return fail(400, "bad_request", "'input' must be a string or an array of strings (token arrays are not supported here)")
        else:
            return fail(400, "bad_request", "'input' is required and must be a string or an array of strings")
        if len(texts) > EMBEDDING_MAX_INPUTS:
            return fail(400, "bad_request", f"'input' has {len(texts)} items, the maximum is {EMBEDDING_MAX_INPUTS}")
        empty = [i for i, t in enumerate(texts) if not t]
        if empty:
            return fail(400, "bad_request", f"'input' must not contain empty strings (index {empty[0]})")
        dimensions = body.get("dimensions")
        if dimensions is None:
            dimensions = embedding_model.DEFAULT_DIMENSIONS
        elif isinstance(dimensions, bool) or not isinstance(dimensions, int) or not 1 <= dimensions <= embedding_model.MAX_DIMENSIONS:
            return fail(400, "bad_request", f"'dimensions' must be an integer between 1 and {embedding_model.MAX_DIMENSIONS}")
        if model.endswith(EMBEDDING_FIXED_DIMENSIONS_SUFFIX):
            dimensions = 32
        encoding = body.get("encoding_format")
        if encoding is None:
            encoding = "float"
        if encoding not in ("float", "base64"):
            return fail(400, "bad_request", "'encoding_format' must be 'float' or 'base64'")

        data = []
        for i, text in enumerate(texts):
            vector = embedding_model.embed(text, dimensions)
            value: Any = vector
            if encoding == "base64":
                value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(embedding_model.count_tokens(t) for t in texts)
        self.llm._update(record, status=200, outcome="ok", dimensions=dimensions)
        self._send_json(
            200,
            {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
        )

    @staticmethod
    def _stream_events(wire: str, r: Rendered, body: dict, partial: Optional[str] = None) -> list:
        if wire == "openai":
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return openai_stream(r, include_usage, partial)
        if wire == "anthropic":
            return anthropic_stream(r, partial)
        return gemini_stream(r, partial)

    def _cut(self, wire: str, r: Rendered, stream: bool, sse: bool, body: dict) -> None:
        if stream and sse:
            events = self._stream_events(wire, r, body, partial=f"[{wire}] partial ans")
            self._start_stream()
            for event, data in events:
                self._sse(event, data)
                time.sleep(0.005)
            return self._abort()
        # non-streaming: announce a longer body than we send, then close
        prefix = b'{"id": "cut-response", "choices": [{"index": 0, "message": {"role": "assistant", "content": "[' + wire.encode() + b"] partial"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(prefix) + 4096))
        self.end_headers()
        self.wfile.write(prefix)
        self._abort()

    def _malformed(self, wire: str, r: Rendered, stream: bool, sse: bool) -> None:
        if not (stream and sse):
            return self._send_bytes(200, b"<html>this is not JSON: {\"choices\": [ {broken</html>", "application/json")
        self._start_stream()
        good = self._stream_events(wire, r, {}, partial=f"[{wire}] mal")
        if wire == "openai":
            self._sse(None, good[0][1])
            self._sse(None, good[1][1] if len(good) > 1 else good[0][1])
            self._sse(None, '{"choices": [ {broken')
        elif wire == "anthropic":
            for event, data in good[:4]:
                self._sse(event, data)
            self._sse("content_block_delta", '{"type": "content_block_delta", "delta": {broken')
        else:
            self._sse(None, good[0][1])
            self._sse(None, '{"candidates": [ {broken')
        self._end_stream()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # clients that drop a keep-alive connection are normal here
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class ScriptedLLM:
    """The scripted fake LLM server.  ``start()`` binds 127.0.0.1 on a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, max_records: int = 20000):
        self._host = host
        self._max_records = max_records
        self._port = port
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._records: list[dict] = []
        self._counters: dict[str, int] = {}
        self._healed: set[str] = set()
        self._big: Optional[bytes] = None
        self._seq = 0

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> "ScriptedLLM":
        if self._server is not None:
            return self
        handler = type("ScriptedLLMHandler", (_Handler,), {"llm": self})
        self._server = _Server((self._host, self._port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "ScriptedLLM":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("ScriptedLLM is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # -- state -------------------------------------------------------------

    def requests(self, nonce: Optional[str] = None, wire: Optional[str] = None) -> list[dict]:
        """Copies of the recorded requests (oldest first), optionally filtered."""
        with self._lock:
            recs = [r for r in self._records if (nonce is None or r["nonce"] == nonce) and (wire is None or r["wire"] == wire)]
            return copy.deepcopy(recs)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._counters.clear()
            self._healed.clear()

    def heal(self, nonce: str) -> None:
        """From now on every request carrying ``nonce`` ignores failure directives."""
        with self._lock:
            self._healed.add(nonce)

    def is_healed(self, nonce: str) -> bool:
        with self._lock:
            return nonce in self._healed

    def big_page(self) -> bytes:
        with self._lock:
            if self._big is None:
                line = b"%07d the quick brown fox jumps over the lazy dog, again and again.\n"
                out = bytearray()
                i = 0
                while len(out) < BIG_PAGE_BYTES:
                    out += line % i
                    i += 1
                self._big = bytes(out[:BIG_PAGE_BYTES])
            return self._big

    def _record(self, rec: dict) -> dict:
        with self._lock:
            self._seq += 1
            rec["seq"] = self._seq
            rec["t"] = time.time()
            self._records.append(rec)
            if len(self._records) > self._max_records:
                del self._records[: len(self._records) - self._max_records]
        return rec

    def _update(self, rec: dict, **fields: Any) -> None:
        with self._lock:
            rec.update(fields)
            rec["t_done"] = time.time()

    def _count(self, nonce: Optional[str]) -> int:
        if nonce is None:
            return 0
        with self._lock:
            self._counters[nonce] = self._counters.get(nonce, 0) + 1
            return self._counters[nonce]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Scripted fake LLM server (OpenAI, Anthropic, Gemini wire formats)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    llm = ScriptedLLM(args.host, args.port).start()
    print(llm.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        llm.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
