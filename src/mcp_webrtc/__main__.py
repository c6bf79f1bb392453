"""``python -m mcp_webrtc``: the ``mcp-webrtc`` command."""

from .cli import main

if __name__ == "__main__":  # not when ``serve --workers`` spawns a worker
    raise SystemExit(main())
