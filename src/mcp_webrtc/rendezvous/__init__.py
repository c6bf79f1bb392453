"""The rendezvous: a WebSocket signaling server that hosts and clients both dial out to.

A host (the MCP server side) registers a room with a host token and sets the room's client
token; clients join the room with that client token. Each join opens a session; the
rendezvous relays signal objects between the host and that client, and tells the host of
joins and leaves. It never sees MCP traffic: once WebRTC is up, the peers talk directly and
the rendezvous may even go away. The protocol is in docs/protocol.md, §7.

Run it with ``mcp-webrtc signal`` or, in a program::

    async with RendezvousServer(RendezvousConfig(port=0, host_tokens=("secret",))) as server:
        print(server.url)
        await server.serve_forever()
"""

from __future__ import annotations

from .backend import Counts, Endpoint, Joined, RendezvousBackend, Share
from .config import RendezvousConfig
from .memory import MemoryBackend
from .server import RendezvousServer

__all__ = [
    "Counts",
    "Endpoint",
    "Joined",
    "MemoryBackend",
    "RendezvousBackend",
    "RendezvousConfig",
    "RendezvousServer",
    "Share",
]
