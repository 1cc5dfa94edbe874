"""Many routines due at one moment: created through the API by several owners, then watched until the
scheduler has started them all. Shared by the end-to-end test and the dispatch benchmark."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from harness.api import Api

PER_OWNER = 50  # the per-owner limit


def owner_tokens(count: int) -> dict[str, str]:
    """``count`` principals and their tokens, for ``EDGECLAW_API_TOKENS``."""
    return {f"owner{i:03d}": f"tok-owner-{i:03d}" for i in range((count + PER_OWNER - 1) // PER_OWNER)}


def tokens_var(tokens: dict[str, str]) -> str:
    return ",".join(f"{name}:{token}" for name, token in tokens.items())


@dataclass
class Burst:
    """What happened to ``count`` routines due at ``due_ms``."""

    count: int
    due_ms: int
    created_in_s: float
    all_started_ms: int  # when the last routine had started its run (first seen by polling)


def run_burst(url: str, tokens: dict[str, str], count: int, prompt: str) -> Burst:
    """Creates ``count`` one-off routines all due at one moment (time enough after now to create them all:
    about 30 creations a second here), then waits until every one has started."""
    lead_s = 10 + count / 15
    due_ms = int((time.time() + lead_s) * 1000)
    apis = [Api(url, token=t) for t in tokens.values()]
    jobs = [(apis[i // PER_OWNER], i) for i in range(count)]

    def create(job: tuple[Api, int]) -> None:
        api, i = job
        spec = {"name": f"burst {i}", "trigger": {"kind": "at", "at_ms": due_ms}, "action": {"prompt": prompt}}
        resp = api.post("/api/routines", json=spec)
        assert resp.status_code == 201, resp.text

    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, jobs))
    created_in = time.monotonic() - began
    assert time.time() * 1000 < due_ms, f"creating {count} routines took {created_in:.1f}s, past their due time"

    def started() -> int:
        return sum(r["runs"] for api in apis for r in api.get("/api/routines").json()["routines"])

    deadline = time.monotonic() + lead_s + 120
    while (n := started()) < count:
        assert time.monotonic() < deadline, f"only {n} of {count} routines started"
        time.sleep(0.25)
    return Burst(count, due_ms, created_in, int(time.time() * 1000))
