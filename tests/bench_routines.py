"""Routine dispatch figures: N one-off routines (default 1,000, 50 per owner) all due at one moment,
created through the worker's API; then how long the scheduler takes to start them all, how late each
run's turn began after its due time, and the rate at which the runs finished.

Run with ``scripts/bench routines``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import start_llm, summary  # noqa: E402
from conftest import worker_vars  # noqa: E402
from harness.api import Api  # noqa: E402
from harness.routines import owner_tokens, run_burst, tokens_var  # noqa: E402
from harness.worker import WorkerProcess  # noqa: E402


def runs_of(api: Api) -> list[dict]:
    runs = []
    for routine in api.get("/api/routines").json()["routines"]:
        runs += api.get(f"/api/routines/{routine['id']}/runs").json()["runs"]
    return runs


def main() -> None:
    # so that a stopped run still shuts down the servers it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--routines", type=int, default=1000, help="routines due at the same moment")
    args = parser.parse_args()

    llm, llm_url = start_llm()
    tokens = owner_tokens(args.routines)
    try:
        with WorkerProcess({**worker_vars(llm_url), "EDGECLAW_API_TOKENS": tokens_var(tokens)}) as worker:
            burst = run_burst(worker.url, tokens, args.routines, "Tick.")
            print(f"created {burst.count} routines in {burst.created_in_s:.1f} s ({burst.count / burst.created_in_s:.0f}/s)")
            print(f"all {burst.count} started {(burst.all_started_ms - burst.due_ms) / 1000:.2f} s after their due time")
            apis = [Api(worker.url, token=t) for t in tokens.values()]
            deadline = time.monotonic() + 300
            while True:
                with ThreadPoolExecutor(8) as pool:
                    runs = [run for owner_runs in pool.map(runs_of, apis) for run in owner_runs]
                if all(r["status"] in ("succeeded", "failed") for r in runs) or time.monotonic() > deadline:
                    break
                time.sleep(1)
            done = [r for r in runs if r["status"] == "succeeded"]
            print(f"{len(done)} of {len(runs)} runs succeeded")
            delays = [r["started_at"] - r["scheduled_at"] for r in done]
            print(f"turn start after the due time: {summary(delays)}")
            last_finish = max(r["started_at"] + r["duration_ms"] for r in done)
            span_s = (last_finish - burst.due_ms) / 1000
            print(f"all turns finished {span_s:.1f} s after the due time: {len(done) / span_s:.0f} runs/s")
    finally:
        llm.terminate()
        llm.wait(timeout=10)


if __name__ == "__main__":
    main()
