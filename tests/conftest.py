"""Shared fixtures: the scripted LLM server, the worker under wrangler dev, and an API client."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Callable, Optional

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from harness.api import ALICE_TOKEN, BOB_TOKEN, Api  # noqa: E402
from harness.llm_server import ScriptedLLM  # noqa: E402
from harness.worker import WorkerProcess  # noqa: E402

pytest_plugins = ["harness.pg_fixture", "harness.capture"]

PRIMARY_MODEL = "openai:gpt-4o-mini"
FALLBACK_MODELS = ("anthropic:claude-3-5-haiku-latest", "gemini:gemini-2.0-flash")
MAX_ITERATIONS = 4
# 32 bytes of base64, as `openssl rand -base64 32` makes them (a test key, sealing test values only)
MASTER_KEY = "k3Jd0Wf9yQ2mX7pL4sT8vB1nC6hG5aZ0eR2uI9oP3wE="


def worker_vars(llm_url: str) -> dict[str, str]:
    """The vars of the shared worker, pointing every provider at the scripted LLM."""
    return {
        "EDGECLAW_API_TOKENS": f"alice:{ALICE_TOKEN},bob:{BOB_TOKEN}",
        "EDGECLAW_MODEL": PRIMARY_MODEL,
        "EDGECLAW_FALLBACK_MODELS": ",".join(FALLBACK_MODELS),
        "OPENAI_API_KEY": "test-openai-key",
        "OPENAI_BASE_URL": f"{llm_url}/v1",
        "ANTHROPIC_API_KEY": "test-anthropic-key",
        "ANTHROPIC_BASE_URL": llm_url,
        "GEMINI_API_KEY": "test-gemini-key",
        "GEMINI_BASE_URL": llm_url,
        "EDGECLAW_MAX_ITERATIONS": str(MAX_ITERATIONS),
        "EDGECLAW_LLM_RETRY_BASE_MS": "20",
        # the local stand-ins for the web live on http://127.0.0.1
        "EDGECLAW_ALLOW_PRIVATE_EGRESS": "true",
        "EDGECLAW_EGRESS_ALLOW_HTTP": "true",
        "EDGECLAW_MASTER_KEY": MASTER_KEY,
    }


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    e2e_dir = TESTS_DIR / "e2e"
    for item in items:
        if e2e_dir in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


EMBEDDING_VARS = {"EDGECLAW_EMBEDDING_MODEL": "openai:test-embed", "EDGECLAW_EMBEDDING_DIMENSIONS": "64"}


@pytest.fixture(scope="session", params=["embedded", "postgres"])
def store(request, llm):
    """A worker per memory store, with embeddings from the scripted server."""
    postgres_url = request.getfixturevalue("postgres").url if request.param == "postgres" else None
    worker = WorkerProcess({**worker_vars(llm.url), **EMBEDDING_VARS}, postgres_url=postgres_url)
    worker.start()
    yield request.param, worker
    worker.close()


@pytest.fixture(scope="session")
def llm():
    server = ScriptedLLM().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def worker(llm: ScriptedLLM):
    proc = WorkerProcess(worker_vars(llm.url))
    try:
        proc.start()
        yield proc
    finally:
        proc.close()


@pytest.fixture
def worker_factory(llm: ScriptedLLM):
    """Start a dedicated worker: ``worker_factory(extra_vars={...})``; a value of None removes a var."""
    made: list[WorkerProcess] = []

    def make(extra_vars: Optional[dict[str, Optional[str]]] = None, **kwargs) -> WorkerProcess:
        merged: dict[str, Optional[str]] = dict(worker_vars(llm.url))
        merged.update(extra_vars or {})
        proc = WorkerProcess({k: v for k, v in merged.items() if v is not None}, **kwargs)
        made.append(proc)
        proc.start()
        return proc

    yield make
    for proc in made:
        proc.close()


@pytest.fixture
def api(worker: WorkerProcess) -> Api:
    return Api(worker.url)


@pytest.fixture
def bob(worker: WorkerProcess) -> Api:
    return Api(worker.url, token=BOB_TOKEN)


@pytest.fixture
def make_api() -> Callable[..., Api]:
    return lambda url, token=ALICE_TOKEN: Api(url, token)


@pytest.fixture
def sid() -> str:
    """A fresh session id."""
    return f"s-{uuid.uuid4().hex}"


@pytest.fixture
def nonce() -> str:
    return f"n{uuid.uuid4().hex[:16]}"
