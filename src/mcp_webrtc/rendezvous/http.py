"""What the rendezvous answers to plain HTTP: the inspector page and module."""

from __future__ import annotations

from http import HTTPStatus

from websockets.datastructures import Headers
from websockets.http11 import Response

#: Plain HTTP GET paths served from the package's assets: the browser inspector and module.
ASSETS = {
    "/": ("inspector.html", "text/html; charset=utf-8"),
    "/inspector": ("inspector.html", "text/html; charset=utf-8"),
    "/mcp-webrtc.js": ("mcp-webrtc.js", "text/javascript; charset=utf-8"),
}


def response(status: HTTPStatus, content_type: str, body: bytes) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)
