"""Local password sign-in, asked by the chat app on behalf of a person."""

from fastapi import APIRouter, HTTPException

from hub.api.deps import CurrentService, SessionDep
from hub.models.user import PasswordSignIn, UserPublic
from hub.services.users import authenticate_password

__all__ = ["router"]

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/password", response_model=UserPublic)
def sign_in_with_password(
    credentials: PasswordSignIn, service: CurrentService, session: SessionDep
) -> UserPublic:
    user = authenticate_password(
        session=session, username=credentials.username, password=credentials.password
    )
    if user is None:
        raise HTTPException(status_code=401, detail="Wrong username or password.")
    return UserPublic.model_validate(user, from_attributes=True)
