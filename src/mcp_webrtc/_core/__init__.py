"""The pure core of mcp-webrtc: framing, SDP capability, signal shapes, JSON-RPC helpers.

Nothing here imports aiortc or the MCP SDK, and nothing here does I/O.
"""
