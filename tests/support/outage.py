"""A database that takes no connections for a while, as when its server is stopped."""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import make_url

from tests.conftest import POSTGRES_ADMIN_DSN

__all__ = ["database_down"]


@contextmanager
def database_down(url: str) -> Iterator[None]:
    """The database takes no writes meanwhile: on SQLite another connection holds an exclusive
    lock; PostgreSQL refuses connections to it and ends the open ones."""
    if url.startswith("sqlite"):
        lock = sqlite3.connect(make_url(url).database or "", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        return
    name = make_url(url).database
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
