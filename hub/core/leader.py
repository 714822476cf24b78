"""Work done once however many hub replicas run: the one that holds the leader lock does it.

On PostgreSQL the lock is a session-level advisory lock (`pg_try_advisory_lock`) held on a
connection of its own for as long as the replica leads. When that replica stops, dies or loses
its connection, PostgreSQL releases the lock, and another replica takes it at its next try. On
SQLite there is one hub process, which always leads.
"""

import logging
import os
import socket
import zlib

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

__all__ = ["LEADER_APPLICATION", "SCHEDULED_CHECKS_LOCK", "LeaderLock"]

logger = logging.getLogger(__name__)

# An advisory lock's key is a number; this one is made from a name nothing else uses.
SCHEDULED_CHECKS_LOCK = zlib.crc32(b"switchboard: scheduled MCP health checks and discovery")

# How the leader's connection names itself to PostgreSQL, followed by "host:pid".
LEADER_APPLICATION = "switchboard leader"

_SERVER_KEEPALIVES = (
    "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
)


class LeaderLock:
    """`is_leader()` before each round of scheduled work: True while this process leads,
    trying to take the lead when it does not. Blocking; call it from a worker thread."""

    def __init__(self, url: str, key: int = SCHEDULED_CHECKS_LOCK, work: str = "work") -> None:
        self._key = key
        self._work = work
        self._me = f"{socket.gethostname()}:{os.getpid()}"
        self._engine: Engine | None = None
        if url.startswith("postgresql"):
            # Not the app's pool: the connection is held for as long as this process leads.
            # The keepalives make the server notice a leader whose machine vanished (and free
            # the lock) within about half a minute rather than the system's two hours. The
            # application name tells an admin which replica leads (pg_stat_activity).
            self._engine = create_engine(
                url,
                poolclass=NullPool,
                connect_args={
                    "options": _SERVER_KEEPALIVES,
                    "application_name": f"{LEADER_APPLICATION} {self._me}"[:63],
                },
            )
        self._held: Connection | None = None
        # Said once per outage: a database that stays down would otherwise fill the log.
        self._unreachable = False

    def is_leader(self) -> bool:
        if self._engine is None:
            return True
        if self._held is not None:
            try:
                self._held.execute(text("SELECT 1"))
                return True
            except DBAPIError as error:
                logger.warning("%s no longer leads %s: %s", self._me, self._work, error)
                self._release()
        return self._take(self._engine)

    def _take(self, engine: Engine) -> bool:
        try:
            connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except DBAPIError as error:
            self._cannot_try(error)
            return False
        try:
            taken = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
            ).scalar_one()
        except DBAPIError as error:
            self._cannot_try(error)
            connection.close()
            return False
        if self._unreachable:
            logger.warning("%s reaches the database again", self._me)
            self._unreachable = False
        if not taken:
            connection.close()
            return False
        self._held = connection
        logger.warning("%s leads %s now", self._me, self._work)
        return True

    def _cannot_try(self, error: DBAPIError) -> None:
        if self._unreachable:
            logger.debug("%s still cannot try to lead %s: %s", self._me, self._work, error)
            return
        self._unreachable = True
        logger.warning(
            "%s cannot try to lead %s until the database answers: %s", self._me, self._work, error
        )

    def _release(self) -> None:
        if self._held is not None:
            try:
                self._held.close()
            except DBAPIError:
                pass  # the connection is gone already, and the lock with it
            self._held = None

    def close(self) -> None:
        """Hand the lead over (closing the connection releases the lock)."""
        if self._held is not None:
            logger.warning("%s hands over %s", self._me, self._work)
        self._release()
        if self._engine is not None:
            self._engine.dispose()
