"""Benchmarks of the built worker: size, cold start, and agent overhead per turn.

Run through ``scripts/bench`` (which builds first). The scripted LLM runs in its own process and answers
instantly, so turn latency is edgeclaw's overhead: routing, auth, the Durable Object hop, SQLite
transcript reads and writes, context assembly and the provider round trip over loopback.
"""

from __future__ import annotations

import argparse
import gzip
import signal
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import worker_vars  # noqa: E402
from harness.api import ALICE_TOKEN  # noqa: E402
from harness.worker import REPO_ROOT, WorkerProcess, free_port  # noqa: E402


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(samples_ms: list[float]) -> str:
    return f"median {statistics.median(samples_ms):.1f} ms, p99 {percentile(samples_ms, 99):.1f} ms (n={len(samples_ms)})"


def wasm_size() -> None:
    wasm = (REPO_ROOT / "build" / "index_bg.wasm").read_bytes()
    packed = gzip.compress(wasm, compresslevel=9)
    print(f"worker wasm: {len(wasm) / 1024:.0f} KiB raw, {len(packed) / 1024:.0f} KiB gzip")


def start_llm() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.llm_server", "--port", str(port)],
        cwd=Path(__file__).resolve().parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/pages/weather", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the scripted LLM server did not start")


def send(client: httpx.Client, base: str, session: str, text: str) -> float:
    started = time.perf_counter()
    resp = client.post(
        f"{base}/api/sessions/{session}/messages",
        json={"content": text},
        headers={"authorization": f"Bearer {ALICE_TOKEN}"},
    )
    elapsed = (time.perf_counter() - started) * 1000
    if resp.status_code != 200:
        raise RuntimeError(f"turn failed: {resp.status_code} {resp.text[:200]}")
    return elapsed


def cold_start(llm_url: str, runs: int) -> None:
    health, first_turn = [], []
    for _ in range(runs):
        worker = WorkerProcess(worker_vars(llm_url))
        started = time.perf_counter()
        try:
            worker.start()
            health.append((time.perf_counter() - started) * 1000)
            with httpx.Client(timeout=30) as client:
                send(client, worker.url, f"cold-{uuid.uuid4().hex[:8]}", "hello")
            first_turn.append((time.perf_counter() - started) * 1000)
        finally:
            worker.close()
    print(f"cold start to first 200 (/api/health): {summary(health)}")
    print(f"cold start to first answered turn:     {summary(first_turn)}")


def turn_overhead(llm_url: str, sequential: int, sessions: int, per_session: int) -> None:
    with WorkerProcess(worker_vars(llm_url)) as worker, httpx.Client(timeout=30) as client:
        direct = []
        for _ in range(50):
            started = time.perf_counter()
            client.post(
                f"{llm_url}/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": "Bearer test-openai-key"},
            ).raise_for_status()
            direct.append((time.perf_counter() - started) * 1000)
        print(f"scripted LLM answering directly (baseline): {summary(direct)}")

        tag = uuid.uuid4().hex[:6]
        for i in range(5):  # warm the isolate and the Durable Objects
            send(client, worker.url, f"warm-{tag}-{i}", "warm up")
        latencies = [send(client, worker.url, f"seq-{tag}-{i % 10}", f"message {i}") for i in range(sequential)]
        print(f"turn latency, sequential (10 sessions):   {summary(latencies)}")

        def session_run(index: int) -> list[float]:
            with httpx.Client(timeout=60) as own:
                return [send(own, worker.url, f"par-{tag}-{index}", f"message {k}") for k in range(per_session)]

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=sessions) as pool:
            results = list(pool.map(session_run, range(sessions)))
        wall = time.perf_counter() - started
        flat = [x for r in results for x in r]
        print(f"turn latency, {sessions} concurrent sessions: {summary(flat)}; {len(flat) / wall:.0f} turns/s")


def main() -> None:
    # so that a stopped run still shuts down the servers it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--per-session", type=int, default=25)
    args = parser.parse_args()

    wasm_size()
    llm, llm_url = start_llm()
    try:
        cold_start(llm_url, args.cold_runs)
        turn_overhead(llm_url, args.sequential, args.sessions, args.per_session)
    finally:
        llm.terminate()
        llm.wait(timeout=10)


if __name__ == "__main__":
    main()
