"""The hub's refusals. Each says, in words fit to show a person, what was wrong and what to do;
none carries an HTTP status: hub/api/errors.py answers each kind with its status, in one place,
for the API, the gateway and the pages alike."""

__all__ = [
    "ConflictError",
    "GoneError",
    "InvalidError",
    "NotFoundError",
    "PermissionDeniedError",
    "Refusal",
    "TooLargeError",
    "TooSoonError",
    "UnauthenticatedError",
    "UnsuitableError",
    "UpstreamError",
]


class Refusal(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnauthenticatedError(Refusal):
    """Nobody the hub knows: no sign-in or token, or one that is not (or no longer) good.
    `code` names which, for programs (OpenAI's error shape carries it on the gateway)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class NotFoundError(Refusal):
    """No such thing, or none the caller may see (the two are not told apart)."""


class PermissionDeniedError(Refusal):
    """The caller may see it but not do this; the message says who may."""


class ConflictError(Refusal):
    """The thing is not in a state that allows this now: taken, changed, or waiting."""


class InvalidError(Refusal):
    """What was asked cannot be as it stands: its parts disagree with each other or the hub."""


class UnsuitableError(Refusal):
    """What the request names cannot serve for it: an address refused, a server out of
    reach, a conversation with nothing in it, a message that is not an answer."""


class GoneError(Refusal):
    """It was there and is no more: a revoked or expired link."""


class TooLargeError(Refusal):
    """What was sent is over a size limit; the message gives both sizes."""


class TooSoonError(Refusal):
    """Asked again sooner than a limit allows; `retry_after_s` says when it will be."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UpstreamError(Refusal):
    """Something the hub called on the caller's behalf failed (an MCP tool call)."""
