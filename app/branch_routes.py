"""`POST /switchboard/conversations/{id}/branch`: choose which version of a turn a conversation
shows (app/branches.py), for its owner, as "‹ ›" under an answer does in the chat; the next
time the conversation opens, anywhere, it shows that branch."""

from typing import Annotated

from chainlit.auth import get_current_user
from chainlit.data import get_data_layer
from chainlit.user import PersistedUser, User
from fastapi import APIRouter, Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from app.data_layer import SwitchboardDataLayer

__all__ = ["BRANCH_ROUTE", "add_branch_routes"]

BRANCH_ROUTE = "/switchboard/conversations/{thread_id}/branch"

_CurrentUser = Annotated[User | PersistedUser | None, Depends(get_current_user)]


class BranchChoice(BaseModel):
    # The id of the message whose version to show.
    turn: str = Field(min_length=1, max_length=64)


def add_branch_routes(app: FastAPI) -> None:
    router = APIRouter()

    @router.post(BRANCH_ROUTE)
    async def choose_branch(
        thread_id: str, choice: BranchChoice, current_user: _CurrentUser
    ) -> JSONResponse:
        """Show the version `turn` (and after it the versions chosen last); answers the ids of
        the person's messages the conversation now shows, oldest first."""
        if current_user is None:
            raise HTTPException(401, "Sign in to the chat first.")
        layer = get_data_layer()
        if not isinstance(layer, SwitchboardDataLayer):
            raise HTTPException(503, "The chat keeps no conversations.")
        try:
            owner = await layer.get_thread_author(thread_id)
        except ValueError:
            owner = None
        if owner != current_user.identifier:
            raise HTTPException(404, f"You have no conversation {thread_id!r}.")
        tree = await layer.turn_tree(thread_id)
        if not tree.parents:
            # A conversation from before versions were kept: its messages are one branch.
            thread = await layer.get_thread(thread_id)
            steps = thread["steps"] if thread is not None else []
            tree.follow([step["id"] for step in steps if step.get("type") == "user_message"])
        if choice.turn not in tree.parents:
            raise HTTPException(404, f"The conversation has no message {choice.turn!r}.")
        tree.choose(choice.turn)
        await layer.save_turn_tree(thread_id, tree)
        return JSONResponse({"shown": tree.path()})

    app.include_router(router)
    # Ahead of Chainlit's catch-all routes.
    added = app.router.routes.pop()
    app.router.routes.insert(0, added)
