"""The PostgreSQL test harness: a real server with pgvector, hermetic and always stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.postgres import (
    MIN_PGVECTOR,
    PostgresServer,
    PostgresStartError,
    PsqlError,
    pid_alive,
    port_accepts,
)

pytest_plugins = ["harness.pg_fixture"]

TESTS_DIR = Path(__file__).resolve().parent


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3])


def assert_gone(port: int, pid: int, tmp_dir: Path) -> None:
    assert not port_accepts(port), f"port {port} still accepts connections"
    assert not pid_alive(pid), f"postmaster {pid} is still running"
    assert not tmp_dir.exists(), f"{tmp_dir} was not removed"


def test_server_serves_the_edgeclaw_database_on_loopback(postgres: PostgresServer):
    assert postgres.running
    assert port_accepts(postgres.port)
    assert postgres.url == f"postgresql://postgres:test@127.0.0.1:{postgres.port}/edgeclaw"

    # The URL itself works, password included (trust auth ignores it).
    out = subprocess.run(
        [str(postgres.psql_bin), postgres.url, "-X", "-A", "-t", "-c",
         "SELECT current_database(), current_user, host(inet_server_addr()), inet_server_port()"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()
    assert out == f"edgeclaw|postgres|127.0.0.1|{postgres.port}"

    assert int(postgres.scalar("SHOW server_version_num")) >= 150000
    assert postgres.scalar("SHOW listen_addresses") == "127.0.0.1"
    assert postgres.scalar("SHOW unix_socket_directories") == str(postgres.tmp_dir)
    assert postgres.tmp_dir.name.startswith("edgeclaw-pg-")
    version = postgres.scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    assert version is not None and version_tuple(version) >= MIN_PGVECTOR


def test_psql_helper_returns_rows_of_every_result(postgres: PostgresServer, pg_database: str):
    rows = postgres.psql(
        """
        CREATE TABLE t (id int, note text);
        INSERT INTO t VALUES (1, 'two
        lines'), (2, NULL), (3, '');
        SELECT id, note FROM t ORDER BY id;
        SELECT 'second result', NULL;
        """,
        database=pg_database,
    )
    assert rows == [
        ("1", "two\n        lines"),
        ("2", None),
        ("3", ""),
        ("second result", None),
    ]
    with pytest.raises(PsqlError, match="does_not_exist"):
        postgres.psql("SELECT * FROM does_not_exist", database=pg_database)
    # Each test database is its own: the table is not in the session database.
    assert postgres.psql("SELECT to_regclass('t') IS NULL") == [("t",)]


def test_pgvector_hnsw_cosine_search(postgres: PostgresServer, pg_database: str):
    postgres.psql(
        """
        CREATE TABLE items (id int PRIMARY KEY, embedding vector(3) NOT NULL);
        CREATE INDEX items_embedding_hnsw ON items USING hnsw (embedding vector_cosine_ops);
        INSERT INTO items VALUES
            (1, '[1, 0, 0]'), (2, '[0, 1, 0]'), (3, '[0.9, 0.2, 0]'), (4, '[0, 0, 1]'), (5, '[0.5, 0.5, 0]');
        ANALYZE items;
        """,
        database=pg_database,
    )
    nearest = postgres.psql(
        "SELECT id, round((embedding <=> '[1, 0, 0]')::numeric, 4) FROM items "
        "ORDER BY embedding <=> '[1, 0, 0]' LIMIT 3",
        database=pg_database,
    )
    assert nearest == [("1", "0.0000"), ("3", "0.0238"), ("5", "0.2929")]

    # The HNSW index really answers the query.
    plan = postgres.psql(
        """
        SET enable_seqscan = off;
        EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <=> '[0, 1, 0]' LIMIT 2;
        SET hnsw.ef_search = 10;
        SELECT id FROM items ORDER BY embedding <=> '[0, 1, 0]' LIMIT 2;
        """,
        database=pg_database,
    )
    plan_text = "\n".join(row[0] for row in plan[:-2])
    assert "Index Scan using items_embedding_hnsw on items" in plan_text
    assert plan[-2:] == [("2",), ("5",)]

    with pytest.raises(PsqlError, match="expected 3 dimensions, not 2"):
        postgres.psql("INSERT INTO items VALUES (9, '[1, 2]')", database=pg_database)


def test_tsvector_gin_index_with_english_stemming(postgres: PostgresServer, pg_database: str):
    postgres.psql(
        """
        CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL);
        CREATE INDEX docs_body_fts ON docs USING gin (to_tsvector('english', body));
        INSERT INTO docs VALUES
            (1, 'The cats were running home'),
            (2, 'A dog sleeps in the sun'),
            (3, 'She runs with her cat every morning'),
            (4, 'Quarterly revenue report');
        ANALYZE docs;
        """,
        database=pg_database,
    )
    search = "SELECT id FROM docs WHERE to_tsvector('english', body) @@ plainto_tsquery('english', 'cat run')"
    assert sorted(postgres.psql(search, database=pg_database)) == [("1",), ("3",)]
    assert postgres.scalar("SELECT to_tsvector('english', 'The cats were running')::text") == "'cat':2 'run':4"

    plan = postgres.psql(f"SET enable_seqscan = off; EXPLAIN (COSTS OFF) {search}", database=pg_database)
    assert "Bitmap Index Scan on docs_body_fts" in "\n".join(row[0] for row in plan)


def test_two_servers_in_parallel_are_separate(postgres_factory):
    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(lambda _: postgres_factory(), range(2))
    assert first.port != second.port
    assert first.pid != second.pid
    assert first.tmp_dir != second.tmp_dir
    assert port_accepts(first.port) and port_accepts(second.port)

    first.psql("CREATE TABLE only_here (x int); INSERT INTO only_here VALUES (42)")
    assert first.psql("SELECT x FROM only_here") == [("42",)]
    assert second.psql("SELECT to_regclass('only_here') IS NULL") == [("t",)]


def test_stop_really_stops_and_start_keeps_the_data(postgres_factory):
    server = postgres_factory()
    server.psql("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
    port, pid = server.port, server.pid

    server.stop()
    assert not server.running
    assert not pid_alive(pid)
    assert not port_accepts(port)
    with pytest.raises(PsqlError):
        server.psql("SELECT 1")

    server.start()
    assert server.port == port  # the URL handed out stays valid
    assert server.psql("SELECT x FROM kept") == [("7",)]

    tmp_dir, pid = server.tmp_dir, server.pid
    server.close()
    assert_gone(port, pid, tmp_dir)


def test_kill_then_restart_recovers_committed_data(postgres_factory):
    server = postgres_factory()
    server.psql("CREATE TABLE survivors (x int); INSERT INTO survivors VALUES (1), (2)")
    port, pid, url = server.port, server.pid, server.url

    server.kill()
    assert not pid_alive(pid)
    assert not port_accepts(port)
    with pytest.raises(PsqlError):
        server.psql("SELECT 1")

    server.restart()
    assert server.url == url
    assert server.pid != pid
    assert server.psql("SELECT count(*) FROM survivors") == [("2",)]
    assert server.scalar("SELECT extname FROM pg_extension WHERE extname = 'vector'") == "vector"


def test_server_is_stopped_when_the_with_body_raises():
    with pytest.raises(RuntimeError, match="boom"):
        with PostgresServer() as server:
            port, pid, tmp_dir = server.port, server.pid, server.tmp_dir
            assert port_accepts(port)
            raise RuntimeError("boom")
    assert_gone(port, pid, tmp_dir)


def _run_python(code: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    env.pop("EDGECLAW_KEEP_TMP", None)
    return subprocess.run(
        [sys.executable, *args], input=code, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )


def test_fixture_stops_the_server_when_a_test_fails(tmp_path: Path):
    record = tmp_path / "server.json"
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            f"""
            import json
            pytest_plugins = ["harness.pg_fixture"]

            def test_fails(postgres_factory, postgres):
                a = postgres_factory()
                servers = [(s.port, s.pid, str(s.tmp_dir)) for s in (a, postgres)]
                open({str(record)!r}, "w").write(json.dumps(servers))
                raise ValueError("test body failed")
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(TESTS_DIR)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ValueError: test body failed" in result.stdout
    servers = json.loads(record.read_text())
    assert len(servers) == 2
    for port, pid, tmp_dir in servers:
        assert_gone(port, pid, Path(tmp_dir))


def test_servers_left_open_are_killed_and_removed_at_exit(tmp_path: Path):
    code = textwrap.dedent(
        """
        import json
        from harness.postgres import PostgresServer, PostgresStartError
        server = PostgresServer().start()
        broken = PostgresServer(settings={"max_connections": -1})
        try:
            broken.start()
        except PostgresStartError:
            pass
        print(json.dumps([server.port, server.pid, str(server.tmp_dir), str(broken.tmp_dir)]), flush=True)
        raise SystemExit("exiting without stop() or close()")
        """
    )
    result = _run_python(code, tmp_path, "-")
    assert result.returncode == 1, result.stderr
    port, pid, tmp_dir, broken_tmp_dir = json.loads(result.stdout.splitlines()[0])
    assert_gone(port, pid, Path(tmp_dir))
    assert not Path(broken_tmp_dir).exists()


def test_start_failure_raises_with_the_log_tail_and_leaves_nothing_running():
    server = PostgresServer(settings={"shared_buffers": "plenty"})
    try:
        with pytest.raises(PostgresStartError) as raised:
            server.start()
        message = str(raised.value)
        assert "server log tail" in message
        assert "shared_buffers" in message
        assert not server.running
        assert server.port is not None and not port_accepts(server.port)
    finally:
        server.close()
    assert not server.tmp_dir.exists()
