"""Request bodies, read only up to the configured cap (`ONBOARDING_MAX_BODY_BYTES`)."""

from __future__ import annotations

from fastapi import Request


class BodyTooLarge(Exception):
    """Over the cap: HTTP 413. The message says by how much."""


async def read_capped(request: Request, cap: int) -> bytes:
    """The body, refused as soon as it passes `cap` bytes (never read whole)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge(f"{declared} bytes; the limit is {cap} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge(f"over the limit of {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
