"""Where the chat keeps the files of its messages (query tables, charts, CSV downloads), so they
are still there when a conversation is opened again: a folder under the data folder, served to
the person whose conversation it is by one route of the chat app.

Chainlit's data layer stores an element's content through a storage client under the key
`{user id}/{element id}/{name}`; the route checks the first part against the signed-in user.
"""

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import anyio
from chainlit.auth import get_current_user
from chainlit.data.storage_clients.base import BaseStorageClient
from chainlit.user import PersistedUser, User
from fastapi import APIRouter, Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse

__all__ = ["FILES_ROUTE", "LocalFileStore", "add_file_route"]

FILES_ROUTE = "/switchboard/files"
_MIME_SUFFIX = ".mime"


class LocalFileStore(BaseStorageClient):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path_of(self, object_key: str) -> Path:
        """The file for `object_key`; refuses keys that would leave the store's folder."""
        parts = object_key.split("/")
        if not object_key or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"not a file key: {object_key!r}")
        path = (self.root / object_key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"not a file key: {object_key!r}")
        return path

    async def upload_file(
        self,
        object_key: str,
        data: bytes | str,
        mime: str = "application/octet-stream",
        overwrite: bool = True,
        content_disposition: str | None = None,
    ) -> dict[str, Any]:
        path = anyio.Path(self.path_of(object_key))
        if overwrite or not await path.exists():
            await path.parent.mkdir(parents=True, exist_ok=True)
            await path.write_bytes(data.encode() if isinstance(data, str) else data)
            await path.with_name(path.name + _MIME_SUFFIX).write_text(mime)
        return {"object_key": object_key, "url": await self.get_read_url(object_key)}

    async def delete_file(self, object_key: str) -> bool:
        path = anyio.Path(self.path_of(object_key))
        for file in (path, path.with_name(path.name + _MIME_SUFFIX)):
            await file.unlink(missing_ok=True)
        return True

    async def get_read_url(self, object_key: str) -> str:
        return f"{FILES_ROUTE}/{quote(object_key)}"

    async def close(self) -> None:
        return None


def add_file_route(app: FastAPI, store: LocalFileStore) -> None:
    """Serve the store's files to their owners at FILES_ROUTE. The route goes first: Chainlit
    answers every other GET path with its page."""
    router = APIRouter()

    @router.get(FILES_ROUTE + "/{object_key:path}")
    async def read_file(
        object_key: str, user: Annotated[User | PersistedUser | None, Depends(get_current_user)]
    ) -> FileResponse:
        owner = object_key.split("/", 1)[0]
        if not isinstance(user, PersistedUser) or user.id != owner:
            raise HTTPException(404, "No such file, or it is not yours.")
        try:
            path = store.path_of(object_key)
        except ValueError as error:
            raise HTTPException(404, "No such file, or it is not yours.") from error
        if not path.is_file():
            raise HTTPException(404, "No such file, or it is not yours.")
        mime_file = path.with_name(path.name + _MIME_SUFFIX)
        mime = mime_file.read_text() if mime_file.is_file() else "application/octet-stream"
        return FileResponse(path, media_type=mime)

    app.include_router(router)
    added = app.router.routes.pop()
    app.router.routes.insert(0, added)
