"""``python -m mcp_webrtc``: the ``mcp-webrtc`` command."""

from .cli import main

raise SystemExit(main())
