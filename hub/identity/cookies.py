"""The names of the cookies that sign a browser in, shared by the hub and the chat."""

__all__ = ["CHAT_COOKIES", "SESSION_COOKIE"]

# The hub's session, one for the hub's pages and the chat (cookies do not depend on the port).
SESSION_COOKIE = "switchboard_session"
# Chainlit's own sign-in cookie, and the pieces it splits a long one into.
CHAT_COOKIES = ("access_token", *(f"access_token_{index}" for index in range(4)))
