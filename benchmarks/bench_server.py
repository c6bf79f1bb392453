"""The MCP server every benchmark talks to, in its own process.

Usage: python benchmarks/bench_server.py stdio
       python benchmarks/bench_server.py http PORT
       python benchmarks/bench_server.py webrtc PORT ENGINE [--uvloop]
           (sessions one after another, each signaled over aiortc's TcpSocketSignaling)
"""

from __future__ import annotations

import base64
import logging
import random
import sys

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.types import ImageContent

from mcp_webrtc import LOOPBACK_ONLY, WebRTCOptions, WebRTCServerTransport, run_server

server = MCPServer("bench")
_RNG = random.Random(1)
_WORDS = [
    "".join(_RNG.choice("etaoinshrdlucmfwypvbgkqjxz") for _ in range(_RNG.randint(2, 9)))
    for _ in range(2000)
]
# Text like a tool's prose or log output: words drawn from a 2000-word vocabulary. It
# deflates about 2.5-3x, as real text does; nothing repeats at the block level.
_TEXT = " ".join(_RNG.choice(_WORDS) for _ in range(400_000))


def echo(text: str) -> str:
    """Return the argument."""
    return text


def text_blob(size: int) -> str:
    """``size`` characters of word-like text."""
    text = _TEXT[random.Random(size).randrange(len(_TEXT) // 2) :]
    while len(text) < size:
        text += " " + _TEXT
    return text[:size]


def binary_blob(size: int) -> ImageContent:
    """``size`` random bytes as a base64 image content block."""
    data = random.Random(size).randbytes(size)
    return ImageContent(data=base64.b64encode(data).decode(), mime_type="application/octet-stream")


for tool in (echo, text_blob, binary_blob):
    server.add_tool(tool, structured_output=False)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aioice").setLevel(logging.WARNING)
    mode = sys.argv[1]
    if mode == "stdio":
        server.run("stdio")
    elif mode == "http":
        import uvicorn

        app = server.streamable_http_app(max_request_body_size=64 * 1024 * 1024)
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    elif mode == "webrtc":
        from aiortc.contrib.signaling import TcpSocketSignaling

        options = WebRTCOptions(host_candidates=LOOPBACK_ONLY, engine=sys.argv[3])  # type: ignore[arg-type]
        port = int(sys.argv[2])

        async def serve_forever() -> None:
            # One session after another, each on a fresh TcpSocketSignaling: it listens as
            # soon as its offer is ready, so a client finds the server waiting, as with HTTP.
            while True:
                signaling = TcpSocketSignaling("127.0.0.1", port)
                await run_server(server, WebRTCServerTransport(signaling, options))

        backend_options = {"use_uvloop": True} if "--uvloop" in sys.argv else {}
        anyio.run(serve_forever, backend_options=backend_options)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
