"""Not an MCP server: a stdio peer that answers every request with its own formatting.

``python -m tests.raw_stdio_server LOG``: each line read is appended to LOG as it came;
each request is answered ``{"result": {"line": <the line>}, "jsonrpc": "2.0", "id": ID}``,
with ``id`` last and two spaces after each colon, as no JSON library writes it by default.
Requests for the method ``tests/hold`` are never answered (work that runs for long).
"""

from __future__ import annotations

import json
import sys

if __name__ == "__main__":
    with open(sys.argv[1], "ab", buffering=0) as log:
        for raw in sys.stdin.buffer:
            log.write(raw)
            message = json.loads(raw)
            if "id" in message and "method" in message and message["method"] != "tests/hold":
                line = raw.rstrip(b"\n").decode()
                answer = (
                    '{"result":  {"line":  ' + json.dumps(line) + '},  "jsonrpc":  "2.0",  "id":  '
                    + json.dumps(message["id"]) + "}"
                )  # fmt: skip
                sys.stdout.write(answer + "\n")
                sys.stdout.flush()
