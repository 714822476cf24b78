"""A browser whose chat replica went away reconnects to another and finds its conversation.

Chainlit's page opens its socket with the conversation's id only when it was loaded on that
conversation's page (`/thread/ID`); one started on the home page reconnects with its session id
alone, and a replica that never held that session would start an empty conversation. So each
turn records which conversation a session holds, in Redis, shared by the replicas; a socket
that connects with a session this replica does not know, and no conversation id, is given
the recorded one. Chainlit then checks that the person owns it and resumes it from the
database, with the part of a reply that had streamed and its cut-off note (unfinished_reply.py).
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from chainlit import socket as chainlit_socket
from chainlit.server import sio
from chainlit.session import WebsocketSession
from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["SessionThreads", "resume_on_reconnect"]

logger = logging.getLogger(__name__)

# As long as a page may stay open and still reconnect.
_KEEP_S = 24 * 3600

Connect = Callable[[str, Any, dict[str, Any]], Awaitable[bool]]


class SessionThreads:
    """Which conversation each chat session holds, in Redis."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix + "chat-session:"

    async def remember(self, session_id: str, thread_id: str) -> None:
        try:
            await self._redis.set(self._prefix + session_id, thread_id, ex=_KEEP_S)
        except RedisError as error:
            # The turn goes on; only a reconnect to another replica would miss it.
            logger.warning("Could not record the conversation of a chat session: %s", error)

    async def thread_of(self, session_id: str) -> str | None:
        try:
            found = await self._redis.get(self._prefix + session_id)
        except RedisError as error:
            logger.warning("Could not look up the conversation of a chat session: %s", error)
            return None
        return found.decode() if isinstance(found, bytes) else None

    async def aclose(self) -> None:
        await self._redis.aclose()


def resume_on_reconnect(threads: SessionThreads) -> None:
    """Put a handler in front of Chainlit's socket `connect` that names the recorded
    conversation of a session this replica does not hold."""
    chainlit_connect: Connect = chainlit_socket.connect

    async def connect(sid: str, environ: Any, auth: dict[str, Any]) -> bool:
        session_id = auth.get("sessionId")
        if (
            isinstance(session_id, str)
            and not auth.get("threadId")
            and WebsocketSession.get_by_id(session_id) is None
            and (thread_id := await threads.thread_of(session_id))
        ):
            auth = {**auth, "threadId": thread_id}
        return await chainlit_connect(sid, environ, auth)

    sio.on("connect")(connect)
