"""Which image and file URLs in a request's messages may go on to a model's servers: data URLs
(the bytes themselves) when the catalog allows them, and https URLs to the hosts it names. A
server that fetches what a caller points it at could otherwise be made to reach inside the
network it runs in."""

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from hub.gateway.errors import GatewayError

__all__ = ["MediaUrls", "media_refusal"]

# Content parts whose `{type: {"url": ...}}` a model's server may fetch (OpenAI's image_url;
# vLLM's video_url and audio_url).
_URL_PARTS = ("image_url", "video_url", "audio_url")


class MediaUrls(BaseModel):
    """A catalog model's `media_urls`: what image and file URLs its servers are given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: bool = Field(default=True, description="data: URLs (the bytes in the request)")
    https_hosts: list[str] = Field(
        default_factory=list,
        description="hosts whose https URLs are passed on; '*.example.com' for its subdomains",
    )

    def allows(self, url: str) -> bool:
        if url.startswith("data:"):
            return self.data
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        host = (parts.hostname or "").lower()
        if parts.scheme.lower() != "https" or not host:
            return False
        return any(
            host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:]))
            for allowed in (name.lower() for name in self.https_hosts)
        )

    def says(self) -> str:
        """What the model takes, in words."""
        kinds = ["data: URLs"] if self.data else []
        if self.https_hosts:
            kinds.append(f"https URLs to {', '.join(self.https_hosts)}")
        return " and ".join(kinds) if kinds else "no image or file URLs"


def _urls(body: dict[str, Any]) -> list[tuple[str, str]]:
    """Each URL in the messages' content parts, with where it is."""
    found: list[tuple[str, str]] = []
    for i, message in enumerate(body.get("messages", ())):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            if not isinstance(part, dict):
                continue
            where = f"messages[{i}].content[{j}]"
            for kind in _URL_PARTS:
                value = part.get(kind)
                url = value.get("url") if isinstance(value, dict) else value
                if value is not None:
                    found.append((f"{where}.{kind}", url if isinstance(url, str) else ""))
            file = part.get("file")
            data = file.get("file_data") if isinstance(file, dict) else None
            # Base64 has no colon: anything with one is a URL of some kind.
            if isinstance(data, str) and ":" in data:
                found.append((f"{where}.file.file_data", data))
    return found


def _shown(url: str) -> str:
    if url.startswith("data:"):
        return "a data: URL"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "a malformed URL"
    if parts.scheme and parts.hostname:
        article = "an" if parts.scheme.lower() in ("http", "https") else "a"
        return f"{article} {parts.scheme} URL to {parts.hostname[:100]}"
    return "something that is not a URL" if not url else "a URL with no host"


def media_refusal(model: str, media: MediaUrls, body: dict[str, Any]) -> GatewayError | None:
    """The 400 for the first URL in `body` that `media` does not allow, or None."""
    for where, url in _urls(body):
        if not media.allows(url):
            return GatewayError(
                400,
                f"{where} is {_shown(url)}, which the model {model!r} is not given: it takes "
                f"{media.says()} (its catalog entry's media_urls). Send the image or file as "
                "a data: URL, or from an allowed host.",
                code="media_url_not_allowed",
                param=where,
            )
    return None
