"""What a failed Fleet API call means (``FleetError`` and its kinds, see ``fleet``), and a TLS probe."""

from __future__ import annotations

import socket
import ssl

import httpx
from flwr.supercore.error import FlowerError

from ..errors import FleetError, NodeUnknown, RunEnded, SuperLinkRefused, SuperLinkTLSError, SuperLinkUnreachable

__all__ = ["classify", "cut_off", "speaks_tls"]


def classify(exc: BaseException, what: str) -> FleetError:
    """The ``FleetError`` kind a failed call ``what`` stands for (with Flower's error code, if any)."""
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        error = FlowerError.from_json(exc.response.text)
        detail = f"[code {error.code}] {error.message}" if error is not None else exc.response.text[:200]
        text = f"{what}: HTTP {status} {detail}".rstrip()
        code = int(error.code) if error is not None else None
        if status == httpx.codes.FORBIDDEN:
            return RunEnded(text, code)
        if status == httpx.codes.UNAUTHORIZED:
            return NodeUnknown(text, code)
        if status in (502, 503, 504):
            return SuperLinkUnreachable(text, code)
        return SuperLinkRefused(text, code)
    if isinstance(exc, httpx.TransportError):
        text = f"{what}: {type(exc).__name__}: {exc}"
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return SuperLinkTLSError(f"{text}: the SuperLink's certificate is not signed by --root-certificates")
        if "WRONG_VERSION_NUMBER" in str(exc) or "record layer failure" in str(exc):
            return SuperLinkTLSError(f"{text}: the SuperLink speaks plain HTTP (started with --insecure?)")
        return SuperLinkUnreachable(text)
    return SuperLinkRefused(f"{what}: {type(exc).__name__}: {exc}")


def cut_off(exc: FleetError) -> bool:
    """Whether a call ended with the connection closed or reset and no answer: what a TLS SuperLink does to a
    plain-text request (which of the two depends on timing), so worth a ``speaks_tls`` probe."""
    text = str(exc)
    return type(exc) is SuperLinkUnreachable and ("RemoteProtocolError" in text or "Connection reset by peer" in text)


def speaks_tls(address: str, timeout: float = 3.0) -> bool:
    """Whether a TLS handshake (certificate not checked) succeeds at ``HOST:PORT``."""
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host.strip("[]") or None),
        ):
            return True
    except (OSError, ValueError):
        return False
