"""A real, throw-away PostgreSQL server with pgvector for the tests.

``PostgresServer`` runs ``initdb`` into a fresh temp dir, starts the server on
127.0.0.1 on a free port (its unix socket lives in that temp dir too), waits
until it accepts connections and creates the database ``edgeclaw`` with the
``vector`` extension.  ``stop()``/``close()`` shut it down (``pg_ctl stop -m
fast``, then SIGKILL by PID if needed).  Servers not closed when Python exits
are killed by PID as well, and their temp dirs removed.

The binaries are found like ``scripts/install-postgres`` installs them:
Debian's PostgreSQL 15 with pgvector first, then the pgserver wheel in
``.venv``.  ``EDGECLAW_PG_BIN`` names another bin dir.  initdb refuses to run
as root, so as root the server commands run as the user ``postgres``.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Mapping, Optional, Union

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_MAJOR = "15"
DEBIAN_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
DEBIAN_SHARE = Path(f"/usr/share/postgresql/{PG_MAJOR}")
MIN_PGVECTOR = (0, 5, 0)
SERVER_USER = "postgres"  # the OS user that owns the cluster when we run as root
SUPERUSER = "postgres"  # the database superuser
PASSWORD = "test"  # ignored by trust auth, but Hyperdrive's local mode wants one in the URL
DATABASE = "edgeclaw"

# psql's unaligned output: a field separator and a NULL marker that text values practically never contain
_FIELD_SEP = "\x1f"
_NULL = "\x1a"

Settings = Mapping[str, Union[str, int, float, bool]]

# Settings for a disposable test cluster.  No fsync (the data lives for one test run), but
# synchronous_commit stays on: with it off, kill() would also lose the last commits, which are still
# in shared memory.  Without fsync a commit is a write() into the page cache, which survives SIGKILL.
DEFAULT_SETTINGS: dict[str, Union[str, int, float, bool]] = {
    "fsync": False,
    "full_page_writes": False,
    "shared_buffers": "64MB",
    "max_connections": 100,
    "timezone": "UTC",
    "log_timezone": "UTC",
}


class PostgresNotInstalled(RuntimeError):
    """No PostgreSQL with pgvector was found (run scripts/install-postgres)."""


class PostgresStartError(RuntimeError):
    """initdb or the server failed; the message ends with the log tail."""


class PsqlError(RuntimeError):
    """psql exited non-zero; ``.stderr`` has its message."""

    def __init__(self, message: str, stderr: str):
        super().__init__(message)
        self.stderr = stderr


# -- finding the binaries ----------------------------------------------------


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def pgvector_version(share_dir: Path) -> Optional[str]:
    """The ``default_version`` of ``share_dir/extension/vector.control``, or None."""
    try:
        control = (share_dir / "extension" / "vector.control").read_text()
    except OSError:
        return None
    match = re.search(r"^default_version\s*=\s*'([^']+)'", control, re.M)
    return match.group(1) if match else None


def _has_pgvector(share_dir: Path) -> bool:
    version = pgvector_version(share_dir)
    return version is not None and _version_tuple(version) >= MIN_PGVECTOR


def _usable(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in ("postgres", "initdb", "pg_ctl"))


def find_pg_bin() -> Path:
    """The bin dir of a PostgreSQL with pgvector, by the rules of scripts/install-postgres."""
    override = os.environ.get("EDGECLAW_PG_BIN")
    if override:
        bin_dir = Path(override)
        if not _usable(bin_dir):
            raise PostgresNotInstalled(f"EDGECLAW_PG_BIN={override} has no postgres, initdb and pg_ctl")
        return bin_dir
    if _usable(DEBIAN_BIN) and _has_pgvector(DEBIAN_SHARE):
        return DEBIAN_BIN
    for root in sorted(REPO_ROOT.glob(".venv/lib/python3*/site-packages/pgserver/pginstall")):
        if _usable(root / "bin") and _has_pgvector(root / "share" / "postgresql"):
            return root / "bin"
    raise PostgresNotInstalled(
        f"no PostgreSQL with pgvector >= {'.'.join(map(str, MIN_PGVECTOR))} found "
        f"({DEBIAN_BIN} with {DEBIAN_SHARE}/extension/vector.control, or pgserver in {REPO_ROOT / '.venv'}); "
        "run scripts/install-postgres"
    )


def _psql_binary(bin_dir: Path) -> Path:
    for candidate in (bin_dir / "psql", DEBIAN_BIN / "psql"):
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("psql")
    if found:
        return Path(found)
    raise PostgresNotInstalled(f"no psql next to {bin_dir} nor on PATH")


# -- small process helpers ---------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a running process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X")


def _children_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and fields[1] == str(pid):
            children.append(int(entry.name))
    return children


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _conf_value(value: Union[str, int, float, bool]) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


_open_servers: dict[int, "PostgresServer"] = {}  # created and not closed yet


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_open_servers.values()):
        try:
            server.kill()
            server.close()
        except Exception:
            pass


# -- the server --------------------------------------------------------------


class PostgresServer:
    """A PostgreSQL cluster in a temp dir, listening on 127.0.0.1 only.

    ``start()`` initialises the cluster (once) and starts it; ``stop()`` shuts
    it down and keeps the data, so ``start()``/``restart()`` bring it back on
    the same port; ``kill()`` simulates a crash (SIGKILL); ``close()`` stops it
    and deletes the temp dir.  Used as a context manager it is started on
    entry and closed on exit, also when the body raises.
    """

    def __init__(
        self,
        *,
        bin_dir: Optional[Path] = None,
        database: str = DATABASE,
        password: str = PASSWORD,
        settings: Optional[Settings] = None,
        startup_timeout: float = 60.0,
        keep_tmp: Optional[bool] = None,
    ):
        self.bin_dir = Path(bin_dir) if bin_dir is not None else find_pg_bin()
        self.psql_bin = _psql_binary(self.bin_dir)
        self.database = database
        self.password = password
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.startup_timeout = startup_timeout
        self.keep_tmp = bool(os.environ.get("EDGECLAW_KEEP_TMP")) if keep_tmp is None else keep_tmp
        self.run_as: Optional[str] = SERVER_USER if os.geteuid() == 0 else None
        if self.run_as is not None:
            try:
                pwd.getpwnam(self.run_as)
            except KeyError:
                raise PostgresNotInstalled(
                    f"running as root needs the OS user {self.run_as!r} for initdb; run scripts/install-postgres"
                ) from None
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="edgeclaw-pg-"))
        _open_servers[id(self)] = self
        self.data_dir = self.tmp_dir / "data"
        self.log_path = self.tmp_dir / "postgres.log"
        self.port: Optional[int] = None
        self.pid: Optional[int] = None
        self.start_seconds: Optional[float] = None  # how long the last start() took
        self._initialised = False
        self._closed = False
        if self.run_as is not None:
            account = pwd.getpwnam(self.run_as)
            os.chown(self.tmp_dir, account.pw_uid, account.pw_gid)

    # -- addresses ---------------------------------------------------------

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        if self.port is None:
            raise RuntimeError("the server was never started")
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        return self.pid is not None and self._is_our_postmaster(self.pid)

    def _is_our_postmaster(self, pid: int) -> bool:
        """``pid`` runs and is the postmaster of this data dir (not a process that reused the PID)."""
        if not pid_alive(pid):
            return False
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return os.fsencode(str(self.data_dir)) in argv

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> "PostgresServer":
        """Start the server (initdb on first use) and wait until it serves ``self.database``."""
        if self._closed:
            raise RuntimeError("this server was closed")
        if self.running:
            return self
        began = time.monotonic()
        try:
            if not self._initialised:
                self._initdb()
            self._start_postmaster()
            if not self._database_exists():
                self.psql(f'CREATE DATABASE "{self.database}"', database="postgres")
                self.psql("CREATE EXTENSION IF NOT EXISTS vector")
        except BaseException as error:
            self._stop_quietly()
            if isinstance(error, PostgresStartError) or not isinstance(error, Exception):
                raise
            raise PostgresStartError(f"PostgreSQL start-up failed: {error}\n{self._log_report()}") from error
        self.start_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Shut down (``pg_ctl stop -m fast``; SIGKILL by PID if that fails). The data is kept."""
        if self.pid is None:
            return
        if self._is_our_postmaster(self.pid):
            try:
                self._run_server_cmd(
                    [self.bin_dir / "pg_ctl", "stop", "-D", self.data_dir, "-m", "fast", "-w", "-t", "15", "-s"],
                    timeout=25,
                )
            except (subprocess.SubprocessError, OSError):
                pass
        deadline = time.monotonic() + 5
        while self._is_our_postmaster(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._is_our_postmaster(self.pid):
            self.kill()
            return
        self._forget()

    def kill(self) -> None:
        """Crash the server: SIGKILL the postmaster and all its processes (data is kept; restart() recovers)."""
        pid = self.pid
        if pid is None:
            return
        if self._is_our_postmaster(pid):
            _signal(pid, signal.SIGSTOP)  # no more forks while we collect its children
            victims = _children_of(pid)
            try:
                group = os.getpgid(pid)
            except OSError:
                group = None
            if group == pid:  # pg_ctl puts the postmaster in a process group of its own
                try:
                    os.killpg(group, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            for victim in victims + [pid]:
                _signal(victim, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(pid_alive(p) for p in victims + [pid]):
                time.sleep(0.05)
            # Until init reaps it (which can take over a second) the dead postmaster is a zombie that
            # still "owns" its lock files, and a new postmaster would refuse to start.  Everything of
            # the cluster is dead, so clean up what a new postmaster would: the lock files and the
            # System V segment.
            if not any(pid_alive(p) for p in victims + [pid]) and os.path.exists(f"/proc/{pid}"):
                self._release_shared_memory()
                stale = [self.data_dir / "postmaster.pid"]
                if self.port is not None:
                    stale.append(self.tmp_dir / f".s.PGSQL.{self.port}.lock")
                for path in stale:
                    try:
                        path.unlink()
                    except OSError:
                        pass
        self._forget()
        if self.port is not None:
            deadline = time.monotonic() + 5
            while port_accepts(self.port) and time.monotonic() < deadline:
                time.sleep(0.05)

    def restart(self) -> "PostgresServer":
        """Stop if running, then start again on the same port with the same data."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and delete its temp dir (unless ``keep_tmp`` / EDGECLAW_KEEP_TMP)."""
        try:
            self.stop()
        finally:
            self._closed = True
            _open_servers.pop(id(self), None)
            self._release_shared_memory()
            if not self.keep_tmp:
                shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"port {self.port}, pid {self.pid}" if self.running else "stopped"
        return f"<PostgresServer {self.bin_dir} {state}>"

    # -- SQL ---------------------------------------------------------------

    def psql(
        self, sql: str, *, database: Optional[str] = None, timeout: float = 60.0
    ) -> list[tuple[Optional[str], ...]]:
        """Run ``sql`` (one or more statements) with psql; return the rows of every result, as text.

        NULL comes back as None.  Raises PsqlError on any SQL error (the
        script stops at the first one).
        """
        if self.port is None:
            raise RuntimeError("the server was never started")
        cmd = [
            str(self.psql_bin),
            "-X",  # no ~/.psqlrc
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-P",
            f"fieldsep={_FIELD_SEP}",
            "-0",  # every record, the last of each result too, ends with a zero byte
            "-P",
            f"null={_NULL}",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            database or self.database,
            "-f",
            "-",
        ]
        result = subprocess.run(
            cmd,
            input=sql,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._client_env(),
            cwd=self.tmp_dir,
        )
        if result.returncode != 0:
            raise PsqlError(f"psql failed ({result.returncode}): {result.stderr.strip()}", result.stderr)
        records = result.stdout.split("\0")
        if records and records[-1].strip() == "":
            records.pop()  # what follows the last terminator
        return [tuple(None if v == _NULL else v for v in record.split(_FIELD_SEP)) for record in records]

    def scalar(self, sql: str, *, database: Optional[str] = None) -> Optional[str]:
        """The single value of a one-row, one-column query."""
        rows = self.psql(sql, database=database)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise AssertionError(f"expected one value from {sql!r}, got {rows!r}")
        return rows[0][0]

    def create_database(self, name: Optional[str] = None) -> str:
        """A new database with pgvector (for tests that want their own); returns its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}"', database="postgres")
        self.psql("CREATE EXTENSION IF NOT EXISTS vector", database=name)
        return self.url_for(name)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- internals ---------------------------------------------------------

    def _client_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update({"PGCONNECT_TIMEOUT": "5", "PGAPPNAME": "edgeclaw-tests", "PGTZ": "UTC"})
        return env

    def _server_cmd(self, cmd: list) -> list[str]:
        cmd = [str(part) for part in cmd]
        if self.run_as is not None:
            return ["runuser", "-u", self.run_as, "--", *cmd]
        return cmd

    def _run_server_cmd(self, cmd: list, *, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(
            self._server_cmd(cmd),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._client_env(),
            cwd=self.tmp_dir,  # readable by the server user, unlike /root
            stdin=subprocess.DEVNULL,
        )

    def _initdb(self) -> None:
        result = self._run_server_cmd(
            [
                self.bin_dir / "initdb",
                "-D",
                self.data_dir,
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            timeout=self.startup_timeout,
        )
        if result.returncode != 0:
            raise PostgresStartError(
                f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}".rstrip()
            )
        settings = {
            **self.settings,
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.tmp_dir),
        }
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# edgeclaw test cluster\n")
            for key, value in settings.items():
                conf.write(f"{key} = {_conf_value(value)}\n")
        # Only TCP from 127.0.0.1 (trust) and the private unix socket.
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )
        self._initialised = True

    def _start_postmaster(self) -> None:
        fixed_port = self.port is not None  # restarts keep their port (URLs handed out stay valid)
        attempts = 1 if fixed_port else 4
        for attempt in range(attempts):
            port = self.port if fixed_port else free_port()
            result = self._run_server_cmd(
                [
                    self.bin_dir / "pg_ctl",
                    "start",
                    "-D",
                    self.data_dir,
                    "-l",
                    self.log_path,
                    "-w",
                    "-t",
                    str(int(self.startup_timeout)),
                    "-s",
                    "-o",
                    f"-p {port}",
                ],
                timeout=self.startup_timeout + 15,
            )
            self.port = port
            self.pid = self._read_pid()
            if result.returncode == 0 and self.running:
                self._wait_ready()
                return
            self._stop_quietly()
            if not fixed_port and attempt + 1 < attempts and "already in use" in self.log_tail(10):
                self.port = None
                continue  # someone took the port between free_port() and bind: pick another
            raise PostgresStartError(
                f"pg_ctl start failed ({result.returncode}): {(result.stdout + result.stderr).strip()}\n"
                + self._log_report()
            )

    def _wait_ready(self) -> None:
        assert self.port is not None
        deadline = time.monotonic() + self.startup_timeout
        last = ""
        while True:
            if not self.running:
                raise PostgresStartError(f"the server exited during start-up\n{self._log_report()}")
            try:
                if self.psql("SELECT 1", database="postgres", timeout=10) == [("1",)]:
                    return
            except (PsqlError, subprocess.TimeoutExpired) as error:
                last = str(error)
            if time.monotonic() > deadline:
                raise PostgresStartError(
                    f"no connection on 127.0.0.1:{self.port} within {self.startup_timeout:.0f}s ({last})\n"
                    + self._log_report()
                )
            time.sleep(0.1)

    def _database_exists(self) -> bool:
        name = self.database.replace("'", "''")
        return bool(self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'", database="postgres"))

    def _read_pid(self) -> Optional[int]:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0].strip()
            return int(first)
        except (OSError, ValueError):
            return None

    def _stop_quietly(self) -> None:
        try:
            self.stop()
        except Exception:
            self.kill()

    def _forget(self) -> None:
        self.pid = None

    def _release_shared_memory(self) -> None:
        """After a crash (kill()) the small System V segment of the cluster would outlive it."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return
        if len(lines) >= 7 and lines[0].strip().isdigit() and not pid_alive(int(lines[0])):
            parts = lines[6].split()
            if len(parts) == 2 and parts[1].isdigit():
                subprocess.run(["ipcrm", "-m", parts[1]], capture_output=True, check=False)

    def _log_report(self) -> str:
        return f"--- server log tail ({self.log_path}) ---\n{self.log_tail()}"


def main(argv: list[str]) -> int:
    """``python -m harness.postgres run -- CMD ...``: run CMD with a fresh server's URL in
    ``EDGECLAW_TEST_DATABASE_URL``; the server is stopped afterwards, whatever CMD did."""
    if len(argv) < 3 or argv[0] != "run" or argv[1] != "--":
        print("usage: python -m harness.postgres run -- CMD [ARGS...]", file=sys.stderr)
        return 2
    with PostgresServer() as server:
        env = dict(os.environ, EDGECLAW_TEST_DATABASE_URL=server.url)
        return subprocess.run(argv[2:], env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
