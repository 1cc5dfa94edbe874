"""Start and stop the real edgeclaw worker under ``wrangler dev``.

The worker must already be built into ``build/`` (the test command does that
before pytest runs).  Wrangler re-runs the ``[build]`` command of a config at
start-up, so ``scripts/local-wrangler-config`` writes a config without it into
a temp dir.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILT_WORKER = REPO_ROOT / "build" / "index.js"
WORKERS_AI_STUB = "edgeclaw-workers-ai-stand-in"


class WorkerStartError(RuntimeError):
    """wrangler dev did not come up (or the worker is not built)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class WorkerProcess:
    """One ``wrangler dev`` process serving the built worker.

    ``vars`` are passed as ``--var KEY:VALUE``.  The persistence directory and
    the vars survive ``restart()``; the port may change.
    """

    def __init__(
        self,
        vars: Mapping[str, str],
        *,
        repo_root: Path = REPO_ROOT,
        startup_timeout: float = 60.0,
        extra_args: Sequence[str] = (),
        keep_tmp: Optional[bool] = None,
        postgres_url: Optional[str] = None,
        workers_ai: Optional[Mapping[str, str]] = None,
    ):
        """``postgres_url`` adds a local Hyperdrive binding, which makes Postgres the memory store.

        ``workers_ai`` (``{"url", "key"}`` of an OpenAI-compatible embeddings server) binds ``AI`` to
        ``harness/workers_ai/worker.js``, a second worker in the same ``wrangler dev`` that answers like
        the Workers AI binding.
        """
        self.vars = {k: str(v) for k, v in vars.items()}
        self.postgres_url = postgres_url
        self.workers_ai = dict(workers_ai) if workers_ai else None
        self.repo_root = Path(repo_root).resolve()
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args)
        self.keep_tmp = bool(os.environ.get("EDGECLAW_KEEP_TMP")) if keep_tmp is None else keep_tmp
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="edgeclaw-worker-"))
        self.state_dir = self.tmp_dir / "state"
        self.state_dir.mkdir()
        self.derived_config = self.tmp_dir / "wrangler.toml"
        self.log_path = self.tmp_dir / "wrangler-0.log"
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.inspector_port: Optional[int] = None
        self.starts = 0

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None or self.proc is None:
            raise RuntimeError("worker is not running")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "WorkerProcess":
        if self.proc is not None:
            return self
        self._write_config()
        self.starts += 1
        self.port = free_port()
        self.inspector_port = free_port()
        while self.inspector_port == self.port:
            self.inspector_port = free_port()
        self.log_path = self.tmp_dir / f"wrangler-{self.starts}.log"
        wrangler = self.repo_root / "node_modules" / ".bin" / "wrangler"
        if not wrangler.exists():
            raise WorkerStartError(f"{wrangler} not found: run `npm ci` in {self.repo_root} first")
        cmd = [
            str(wrangler),
            "dev",
            "--local",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--inspector-port",
            str(self.inspector_port),
            "-c",
            str(self.derived_config),
            "--persist-to",
            str(self.state_dir),
            "--test-scheduled",  # serves /cdn-cgi/handler/scheduled for cron tests
            *self.extra_args,
        ]
        if self.workers_ai:
            cmd += ["-c", str(self.tmp_dir / "workers-ai.toml")]
        for key, value in self.vars.items():
            cmd += ["--var", f"{key}:{value}"]
        env = dict(os.environ)
        env.update(
            {
                "WRANGLER_SEND_METRICS": "false",
                "CI": "true",
                "CLOUDFLARE_CF_FETCH_ENABLED": "false",
                "WRANGLER_LOG_PATH": str(self.tmp_dir / "wrangler-logs"),
                "NO_COLOR": "1",
                "FORCE_COLOR": "0",
            }
        )
        with open(self.log_path, "wb") as log:
            log.write(("$ " + " ".join(cmd) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                cwd=str(self.repo_root),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the child leads its own process group
        self._signal_group(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal_group(pgid, signal.SIGKILL)
            proc.wait(timeout=10)
        # workerd children may outlive wrangler; make sure the group is gone
        deadline = time.monotonic() + 5
        while self._group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self._group_alive(pgid):
            self._signal_group(pgid, signal.SIGKILL)
            time.sleep(0.2)

    def restart(self) -> "WorkerProcess":
        """Stop and start again with the same persistence dir and vars (the port may change)."""
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        if not self.keep_tmp:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> "WorkerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` log lines, runs of identical lines collapsed."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        collapsed: list[str] = []
        repeats = 0
        previous_key = None
        for line in text.splitlines():
            key = re.sub(r"\(\d+ms\)", "", line)  # request timings differ between otherwise equal lines
            if key == previous_key:
                repeats += 1
                continue
            if repeats:
                collapsed.append(f"    (previous line repeated {repeats} more times)")
                repeats = 0
            collapsed.append(line)
            previous_key = key
        if repeats:
            collapsed.append(f"    (previous line repeated {repeats} more times)")
        return "\n".join(collapsed[-lines:])

    def _write_config(self) -> None:
        if not BUILT_WORKER.exists():
            raise WorkerStartError(
                f"the worker is not built: {BUILT_WORKER} is missing. Run scripts/build-worker "
                "(scripts/test does it before running pytest)."
            )
        command = [str(self.repo_root / "scripts" / "local-wrangler-config"), str(self.tmp_dir)]
        if self.postgres_url:
            command.append(self.postgres_url)
        subprocess.run(command, check=True)
        if self.workers_ai:
            stub = Path(__file__).resolve().parent / "workers_ai" / "worker.js"
            (self.tmp_dir / "workers-ai.toml").write_text(
                f'name = "{WORKERS_AI_STUB}"\nmain = "{stub}"\ncompatibility_date = "2026-04-01"\n\n[vars]\n'
                f'EMBEDDINGS_URL = "{self.workers_ai["url"]}"\nEMBEDDINGS_KEY = "{self.workers_ai["key"]}"\n'
            )
            with open(self.derived_config, "a") as config:
                config.write(f'\n[[services]]\nbinding = "AI"\nservice = "{WORKERS_AI_STUB}"\n')

    def _wait_healthy(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.startup_timeout
        health = f"http://127.0.0.1:{self.port}/api/health"
        last_error = "no attempt"
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise WorkerStartError(f"wrangler dev exited with code {rc} before becoming healthy.\n--- log tail ---\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(health, timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last_error = f"status {resp.status}"
            except urllib.error.HTTPError as e:
                detail = e.read(500).decode("utf-8", "replace").strip()
                last_error = f"status {e.code}: {detail}" if detail else f"status {e.code}"
            except (urllib.error.URLError, OSError) as e:
                last_error = str(e)
            if time.monotonic() > deadline:
                raise WorkerStartError(
                    f"worker did not answer GET /api/health with 200 within {self.startup_timeout:.0f}s "
                    f"(last: {last_error}).\n--- log tail ({self.log_path}) ---\n{self.log_tail()}"
                )
            time.sleep(0.25)

    @staticmethod
    def _signal_group(pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    @staticmethod
    def _group_alive(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
