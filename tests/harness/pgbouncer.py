"""PgBouncer in transaction-pooling mode in front of a test PostgreSQL, for benchmarks.

In production Hyperdrive keeps a pool of warm connections to the database, so a Worker's per-request
connection does not cost the database a fresh backend; locally a pooler plays that part. The binary is
taken from ``PGBOUNCER_BIN``, the PATH, or ``scripts/install-pgbouncer``'s private directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
PRIVATE_ROOT = REPO_ROOT / ".tools" / "pgbouncer"


def find_pgbouncer() -> Optional[Path]:
    """The pgbouncer binary, if one is available."""
    for candidate in (os.environ.get("PGBOUNCER_BIN"), shutil.which("pgbouncer"), str(PRIVATE_ROOT / "usr/sbin/pgbouncer")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


class PgBouncer:
    """One pgbouncer process (started in its own process group, stopped by PID)."""

    def __init__(self, upstream_port: int, database: str = "edgeclaw", user: str = "postgres", password: str = "test"):
        binary = find_pgbouncer()
        if binary is None:
            raise RuntimeError("pgbouncer not found: run scripts/install-pgbouncer or set PGBOUNCER_BIN")
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="edgeclaw-pgbouncer-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.database, self.user, self.password = database, user, password
        (self.dir / "userlist.txt").write_text(f'"{user}" "{password}"\n')
        (self.dir / "pgbouncer.ini").write_text(
            f"[databases]\n{database} = host=127.0.0.1 port={upstream_port} dbname={database}\n\n"
            f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir / 'userlist.txt'}\npool_mode = transaction\n"
            "max_client_conn = 500\ndefault_pool_size = 20\nignore_startup_parameters = extra_float_digits,timezone\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
        )
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def __enter__(self) -> "PgBouncer":
        env = dict(os.environ)
        libs = PRIVATE_ROOT / "usr/lib/x86_64-linux-gnu"
        if libs.is_dir():
            env["LD_LIBRARY_PATH"] = f"{libs}:{env.get('LD_LIBRARY_PATH', '')}"
        command = [str(self.binary), str(self.dir / "pgbouncer.ini")]
        if os.geteuid() == 0:  # pgbouncer refuses to run as root; it drops to `nobody` itself
            self.dir.chmod(0o777)
            command[1:1] = ["-u", "nobody"]
        self.proc = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        log = (self.dir / "pgbouncer.log").read_text(errors="replace") if (self.dir / "pgbouncer.log").exists() else ""
        self.__exit__()
        raise RuntimeError(f"pgbouncer did not start:\n{log[-2000:]}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
