"""The one error the SQL guard raises."""

__all__ = ["QueryRefusedError"]


class QueryRefusedError(ValueError):
    """The query was not sent; the message says what is wrong and how to fix it."""
