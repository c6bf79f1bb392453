"""What the rendezvous answers to plain HTTP: the inspector page and module."""

from __future__ import annotations

from http import HTTPStatus

from websockets.datastructures import Headers
from websockets.http11 import Response

JAVASCRIPT = "text/javascript; charset=utf-8"

#: The parts of mcp-webrtc.js, in assets/mcp-webrtc/: the entry imports them as
#: ``./mcp-webrtc/<part>.js``, so a page that loads ``/mcp-webrtc.js`` fetches each from
#: ``/mcp-webrtc/<part>.js``. Only these are served (package.json lists them too).
MODULE_PARTS = (
    "capabilities",
    "errors",
    "framing",
    "identity",
    "jsonrpc",
    "log",
    "mcp",
    "negotiation",
    "options",
    "rendezvous",
    "sender",
    "signaling",
    "stats",
    "transport",
)

#: Plain HTTP GET paths served from the package's assets: the browser inspector and module.
#: Each maps to a file relative to the assets package (``/`` separated) and its content type.
ASSETS = {
    "/": ("inspector.html", "text/html; charset=utf-8"),
    "/inspector": ("inspector.html", "text/html; charset=utf-8"),
    "/mcp-webrtc.js": ("mcp-webrtc.js", JAVASCRIPT),
    **{f"/mcp-webrtc/{part}.js": (f"mcp-webrtc/{part}.js", JAVASCRIPT) for part in MODULE_PARTS},
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
