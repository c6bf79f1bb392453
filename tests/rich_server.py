"""An MCP server using every feature a bridge must carry both ways (tools, resources,
prompts, progress, logging, sampling, elicitation, cancellation), for the HTTP tests.

``python -m tests.rich_server PORT`` serves it over Streamable HTTP at
``http://127.0.0.1:PORT/mcp`` with uvicorn, as any MCP server deployed over HTTP is.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import SamplingMessage, TextContent
from pydantic import BaseModel

from .support import CANCELLED_WAITS, blob, digest, echo, wait

RICH = MCPServer("rich")
for _tool in (echo, digest, blob, wait):
    RICH.add_tool(_tool, structured_output=False)


@RICH.tool(structured_output=False)
async def count(n: int, ctx: Context) -> str:
    """Count to ``n``, reporting progress and logging each step."""
    for i in range(1, n + 1):
        await ctx.info(f"step {i} of {n}")
        await ctx.report_progress(i, n, f"step {i}")
    return f"counted to {n}"


@RICH.tool(structured_output=False)
async def ask(question: str, ctx: Context) -> str:
    """Ask the client's model (sampling) and return its answer."""
    message = SamplingMessage(role="user", content=TextContent(type="text", text=question))
    result = await ctx.session.create_message(
        [message], max_tokens=50, related_request_id=ctx.request_id
    )
    content: Any = result.content
    return f"the model said: {content.text}"


class Confirmation(BaseModel):
    ok: bool


@RICH.tool(structured_output=False)
async def confirm(question: str, ctx: Context) -> str:
    """Ask the user (elicitation) and return the decision."""
    answer = await ctx.elicit(question, Confirmation)
    data = answer.data if answer.action == "accept" else None
    return f"{answer.action}: {data.ok if data else None}"


@RICH.tool(structured_output=False)
def cancelled() -> str:
    """The ``seconds`` of the ``wait`` calls cancelled so far."""
    return ",".join(f"{s:g}" for s in CANCELLED_WAITS)


#: HTTP requests this process received, by method (DELETE ends an MCP session).
HTTP_METHODS: Counter[str] = Counter()


@RICH.tool(structured_output=False)
def http_methods() -> str:
    """The HTTP requests received so far, by method (JSON)."""
    return json.dumps(HTTP_METHODS)


@RICH.tool(structured_output=False)
def authorization(ctx: Context) -> str:
    """The Authorization header of the request calling this tool."""
    return (ctx.headers or {}).get("authorization", "")


@RICH.tool(structured_output=False)
def pid() -> str:
    """The id of this server process."""
    return str(os.getpid())


@RICH.resource("note://motd")
def motd() -> str:
    """The message of the day."""
    return "carried over WebRTC"


@RICH.resource("note://greeting/{name}")
def greeting(name: str) -> str:
    """A greeting for ``name``."""
    return f"hello {name}"


@RICH.prompt()
def review(code: str) -> str:
    """Ask for a review of ``code``."""
    return f"Please review:\n{code}"


def main() -> None:
    import uvicorn

    inner = RICH.streamable_http_app()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            HTTP_METHODS[scope["method"]] += 1
        await inner(scope, receive, send)

    port = int(sys.argv[1])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
