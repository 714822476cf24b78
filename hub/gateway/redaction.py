"""Taking keys, hosts and addresses out of a provider's error message before it goes back to
the caller: a provider's message can echo the key it was sent, name its internal hosts, or
carry the address of the server it runs on, none of which a caller of the gateway may see."""

import ipaddress
import re

__all__ = ["redacted"]

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>()\[\]{}]+")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}")
# Keys with a known prefix (sk-..., sk-proj-..., sb-..., AIza...), or any long run of key
# characters with a digit in it.
_KEY = re.compile(
    r"\b(?:(?:sk|pk|rk|sb|key|api[-_]?key)[-_][A-Za-z0-9_-]{6,}|AIza[A-Za-z0-9_-]{20,})"
    r"|\b(?=[A-Za-z_-]*\d)[A-Za-z0-9_-]{32,}\b"
)
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b")
_IPV6_LIKE = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_HOST_PORT = re.compile(r"\b[A-Za-z][A-Za-z0-9-]*:\d{2,5}\b")
_HOSTNAME = re.compile(
    r"\b(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{1,62}\b"
)
_LOCALHOST = re.compile(r"(?i)\blocalhost\b")


def _ipv6(found: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(found.group(0))
    except ValueError:
        return found.group(0)
    return "[address]"


def _hostname(found: re.Match[str]) -> str:
    # A dotted path with a number in it (messages.0.content) is a field, not a host.
    if any(label.isdigit() for label in found.group(0).split(".")):
        return found.group(0)
    return "[host]"


def redacted(message: str) -> str:
    """`message` with URLs, credentials, IP addresses and host names replaced by a word in
    brackets that says what was there."""
    message = _URL.sub("[url]", message)
    message = _BEARER.sub(r"\1 [key]", message)
    message = _KEY.sub("[key]", message)
    message = _IPV4.sub("[address]", message)
    message = _IPV6_LIKE.sub(_ipv6, message)
    message = _HOSTNAME.sub(_hostname, message)
    message = _HOST_PORT.sub("[host]", message)
    return _LOCALHOST.sub("[host]", message)
