"""pytest fixtures around ``harness.postgres.PostgresServer`` (a real PostgreSQL with pgvector).

Load them with ``pytest_plugins = ["harness.pg_fixture"]`` (conftest.py or a test module).

- ``postgres``: one server for the whole session, with the database ``edgeclaw``.  Don't stop or
  kill it in a test; use ``postgres_factory`` for that.
- ``pg_database``: the name of a fresh database (with pgvector) on the session server, per test;
  ``postgres.url_for(name)`` is its URL.
- ``postgres_factory``: ``postgres_factory(**kwargs)`` starts a dedicated server (same arguments as
  ``PostgresServer``); all of them are closed after the test, however it ends.
"""

from __future__ import annotations

from typing import Callable, Iterator

import pytest

from harness.postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
def pg_database(postgres: PostgresServer) -> str:
    url = postgres.create_database()
    return url.rsplit("/", 1)[1]


@pytest.fixture
def postgres_factory() -> Iterator[Callable[..., PostgresServer]]:
    made: list[PostgresServer] = []

    def make(**kwargs) -> PostgresServer:
        server = PostgresServer(**kwargs)
        made.append(server)
        return server.start()

    yield make
    errors = []
    for server in made:
        try:
            server.close()
        except Exception as error:  # close the others anyway
            errors.append(error)
    if errors:
        raise errors[0]
