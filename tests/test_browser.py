"""The browser side: the inspector page and mcp-webrtc.js in Debian's Chromium (Playwright).

Chromium runs headless inside the test namespace, with the flags it needs for WebRTC on
loopback (see shared notes): --allow-loopback-in-peer-connection and mDNS host candidates
off. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from mcp_webrtc import Identity, PeerIdentityError
from mcp_webrtc.bridges import stdio_command_handler
from mcp_webrtc.rendezvous import RendezvousServer
from mcp_webrtc.serve import connect

from . import support
from .support import make_server, mcp_client, options, payload, rendezvous, serving, text_of

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
HOST_TOKEN, CLIENT_TOKEN = "browser-host", "browser-client"
#: The MCP project's reference server (stdio), installed by `make test`.
EVERYTHING = ROOT / "tests/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
needs_everything = pytest.mark.skipif(
    not EVERYTHING.exists(), reason="run `make test` to install the npm peers"
)


@asynccontextmanager
async def page_on(server: RendezvousServer) -> AsyncIterator[Page]:
    # imported here: the mcp 1.x run collects this file without running it
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            messages: list[str] = []
            page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
            await page.goto(f"{server.url.replace('ws://', 'http://')}?room=lab")
            try:
                yield page
            except BaseException:
                print("browser console:\n" + "\n".join(messages))
                with anyio.move_on_after(5):
                    shown = await page.evaluate(
                        "[document.body.dataset.state, document.querySelector('#error')"
                        "?.textContent]"
                    )
                    print(f"page state, error: {shown}")
                raise
        finally:
            await browser.close()


@asynccontextmanager
async def python_server() -> AsyncIterator[RendezvousServer]:
    async with (
        rendezvous(HOST_TOKEN) as server,
        serving(server.url, HOST_TOKEN, CLIENT_TOKEN, make_server("python-for-browser")),
    ):
        yield server


@asynccontextmanager
async def everything_server() -> AsyncIterator[RendezvousServer]:
    """server-everything behind serve, as `mcp-webrtc serve -- node .../index.js stdio`."""
    target = stdio_command_handler("node", [str(EVERYTHING), "stdio"])
    async with (
        rendezvous(HOST_TOKEN) as server,
        serving(server.url, HOST_TOKEN, CLIENT_TOKEN, target),
    ):
        yield server


async def connect_inspector(page: Page) -> None:
    """Connect the inspector to room "lab"; it is connected once it has listed everything."""
    await page.fill("#token", CLIENT_TOKEN)
    await page.click("#connect")
    await page.wait_for_selector('body[data-state="connected"]', timeout=30_000)


async def screenshot(page: Page, name: str) -> None:
    """A full-page screenshot kept in test-artifacts/, one per engine."""
    path = ARTIFACTS / f"{name}-{support.ENGINE}.png"
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


async def history(page: Page) -> list[dict[str, str]]:
    """The inspector's history rows (their data attributes), oldest first."""
    rows: list[dict[str, str]] = await page.eval_on_selector_all(
        "#history-rows tr", "rows => rows.map((row) => ({...row.dataset})).reverse()"
    )
    return rows


@pytest.fixture(autouse=True)
def _our_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mcp_webrtc")  # shown when a test fails


async def test_inspector_lists_and_calls_a_tool_of_a_python_server() -> None:
    async with python_server() as server, page_on(server) as page:
        await connect_inspector(page)
        assert await page.text_content("#server") == "python-for-browser " + (
            await page.evaluate("window.mcpInspector.client.serverInfo.version")
        )
        greet = page.locator('#tools .item[data-name="greet"]')
        await greet.locator("textarea").fill('{"name": "Chromium"}')
        await greet.locator("button").click()
        await page.wait_for_function(
            "document.querySelector('#result').textContent.includes('Hello, Chromium!')",
            timeout=15_000,
        )
        # the browser may list its own side as peer-reflexive: aiortc learns it from checks
        pair = await page.text_content("#pair")
        assert pair in ("host ↔ host", "prflx ↔ host"), pair
        await screenshot(page, "inspector")


#: What Chromium 156 was seen doing on about one connect in 120 under load (packet
#: captures, docs/browser.md): the first send on a fresh channel is counted in
#: bufferedAmount and never leaves; the next send goes and the count is right again.
LOSE_THE_FIRST_SEND = """() => {
  const send = RTCDataChannel.prototype.send;
  window.lostSends = 0;
  RTCDataChannel.prototype.send = function (data) {
    if (!this.lostOne) {
      this.lostOne = true;
      window.lostSends += 1;
      const size = typeof data === 'string' ? new Blob([data]).size : data.byteLength;
      Object.defineProperty(this, 'bufferedAmount', {configurable: true, get: () => size});
      return;
    }
    delete this.bufferedAmount;
    return send.call(this, data);
  };
}"""


async def test_the_inspector_connects_when_chromium_loses_the_first_send() -> None:
    async with python_server() as server, page_on(server) as page:
        await page.evaluate(LOSE_THE_FIRST_SEND)
        await connect_inspector(page)
        assert await page.evaluate("window.lostSends") == 1
        assert await page.text_content("#server") == "python-for-browser " + (
            await page.evaluate("window.mcpInspector.client.serverInfo.version")
        )


async def choose_log_level(page: Page, level: str) -> None:
    await page.select_option("#log-level", level)
    await page.wait_for_selector(f'#log-level[data-applied="{level}"]', timeout=15_000)


@needs_everything
async def test_inspector_shows_server_logs_from_the_level_chosen_up() -> None:
    """server-everything logs each resources/subscribe and /unsubscribe at "info" before it
    answers; the answer comes after the log line on the same ordered channel."""
    async with everything_server() as server, page_on(server) as page:
        await connect_inspector(page)
        await choose_log_level(page, "debug")
        resource = page.locator("#resources .item").first
        uri = await resource.get_attribute("data-name") or ""
        toggle = resource.locator('button[data-action="subscribe"]')
        await toggle.click()
        await page.wait_for_selector('button[data-subscribed="true"]', timeout=15_000)
        logs = page.locator('#notifications li[data-method="notifications/message"]')
        line = logs.filter(has_text="Received Subscribe Resource request")
        assert await line.get_attribute("data-level") == "info"
        assert uri in (await line.text_content() or "")
        await choose_log_level(page, "warning")
        await toggle.click()  # now "Unsubscribe"
        await page.wait_for_selector('button[data-subscribed="false"]', timeout=15_000)
        # the answer is here, so the "info" line would be too had the server sent it
        assert await logs.filter(has_text="Unsubscribe").count() == 0
        set_level = [r["outcome"] for r in await history(page) if r["method"] == "logging/setLevel"]
        assert set_level == ["ok", "ok"]
        await screenshot(page, "inspector-logs")


@needs_everything
async def test_inspector_shows_the_progress_of_a_long_running_call() -> None:
    """Tool calls carry a progress token; server-everything reports each step of its
    long-running operation until 4 of 4."""
    name = "trigger-long-running-operation"
    async with everything_server() as server, page_on(server) as page:
        await connect_inspector(page)
        tool = page.locator(f'#tools .item[data-name="{name}"]')
        await tool.locator("textarea").fill('{"duration": 1, "steps": 4}')
        await tool.locator("button").click()
        call = page.locator(f'#calls .call[data-tool="{name}"]')
        await page.wait_for_selector(
            f'#calls .call[data-tool="{name}"][data-state="done"]', timeout=15_000
        )
        assert await call.get_attribute("data-percent") == "100"
        assert await call.locator(".percent").text_content() == "4/4 · 100% · done"
        assert await call.locator("progress").evaluate("(bar) => bar.value") == 100
        assert "Long running operation completed" in (await page.text_content("#result") or "")
        progress = page.locator('#notifications li[data-method="notifications/progress"]')
        steps = [
            json.loads(t)["progress"] for t in await progress.locator(".text").all_text_contents()
        ]
        assert steps == [4, 3, 2, 1]  # newest first
        await screenshot(page, "inspector-progress")


async def test_inspector_history_shows_each_request_with_its_duration_and_sizes() -> None:
    size = 20_000  # base64 characters: one byte each in UTF-8, no JSON escapes
    async with python_server() as server, page_on(server) as page:
        await connect_inspector(page)
        echo = page.locator('#tools .item[data-name="echo"]')
        await echo.locator("textarea").fill(json.dumps({"data": payload(size, seed=3)}))
        await echo.locator("button").click()
        await page.wait_for_selector(
            '#history-rows tr[data-method="tools/call"][data-outcome="ok"]', timeout=15_000
        )
        code = await page.evaluate(
            "window.mcpInspector.client.request('no/such/method').catch((e) => e.code)"
        )
        assert code == -32601
        await page.wait_for_selector('#history-rows tr[data-outcome="error"]', timeout=15_000)
        rows = await history(page)
        assert [(r["method"], r["outcome"]) for r in rows] == [
            ("initialize", "ok"),
            ("tools/list", "ok"),
            ("resources/list", "ok"),
            ("prompts/list", "ok"),
            ("tools/call", "ok"),
            ("no/such/method", "error"),
        ]
        for row in rows:
            assert float(row["durationMs"]) > 0, row
            assert int(row["requestBytes"]) > 40, row  # {"jsonrpc":"2.0","id":1,"method":...
            assert int(row["responseBytes"]) > 30, row
        call = rows[4]
        assert size < int(call["requestBytes"]) < size + 200, call
        assert size < int(call["responseBytes"]) < size + 200, call
        shown = page.locator(f'#history-rows tr[data-id="{call["id"]}"]')
        assert (
            await shown.locator(".sent").get_attribute("title") == f"{call['requestBytes']} bytes"
        )
        assert "ms" in (await shown.locator(".duration").text_content() or "")
        await screenshot(page, "inspector-history")


async def test_inspector_shows_live_connection_stats() -> None:
    size = 300_000
    live = "#stats[data-live='true']:not([data-rtt-ms=''])"
    async with python_server() as server, page_on(server) as page:
        await connect_inspector(page)
        await page.wait_for_selector(live, timeout=15_000)
        before: dict[str, str] = await page.eval_on_selector("#stats", "(s) => ({...s.dataset})")
        assert before["localType"] in ("host", "prflx"), before
        assert (before["remoteType"], before["protocol"]) == ("host", "udp"), before
        assert 0 <= float(before["rttMs"]) < 1000, before
        remote = await page.text_content("#stats-remote") or ""
        assert remote.startswith(("127.0.0.", "[::1]:")), remote  # libwebrtc takes ::1
        blob = page.locator('#tools .item[data-name="blob"]')
        await blob.locator("textarea").fill(json.dumps({"size": size, "seed": 1}))
        await blob.locator("button").click()
        await page.wait_for_selector(
            '#history-rows tr[data-method="tools/call"][data-outcome="ok"]', timeout=15_000
        )
        # refreshed every second: the 300 kB answer shows within a few
        await page.wait_for_function(
            "(least) => Number(document.querySelector('#stats').dataset.bytesReceived) > least",
            arg=int(before["bytesReceived"]) + size,
            timeout=10_000,
        )
        after: dict[str, str] = await page.eval_on_selector("#stats", "(s) => ({...s.dataset})")
        assert int(after["bytesSent"]) > int(before["bytesSent"])
        assert int(after["updates"]) > int(before["updates"])
        await screenshot(page, "inspector-stats")
        await page.click("#disconnect")
        await page.wait_for_selector('body[data-state="closed"]', timeout=15_000)
        assert await page.get_attribute("#stats", "data-live") == "false"


MCP_CLIENT_WITH_A_FAKE_TRANSPORT = """
async () => {
  const m = await import('/mcp-webrtc.js');
  const sent = [];
  const waiting = [];
  const nextSent = () => new Promise((resolve) => waiting.push(resolve));
  let statsAsked = 0;
  const transport = {
    async start() {},
    async send(message) { sent.push(message); waiting.shift()?.(message); },
    async close() { this.onclose?.(); },
    async connectionInfo() {
      statsAsked += 1;
      return {rtt: 0.002, bytesSent: 10, bytesReceived: 20};
    },
  };
  const notify = (method, params) => transport.onmessage({jsonrpc: '2.0', method, params});
  const client = new m.McpClient(transport);
  let out = nextSent();
  const connecting = client.connect();
  const init = await out;
  out = nextSent();
  transport.onmessage({jsonrpc: '2.0', id: init.id, result: {protocolVersion: '2025-06-18',
    capabilities: {logging: {}}, serverInfo: {name: 'fake', version: '1'}}});
  await connecting;
  await out;  // notifications/initialized
  out = nextSent();
  transport.onmessage({jsonrpc: '2.0', id: 'p1', method: 'ping'});
  const pong = await out;
  out = nextSent();
  transport.onmessage({jsonrpc: '2.0', id: 7, method: 'sampling/createMessage', params: {}});
  const refused = await out;

  const notes = [];
  client.onnotification = (message) => notes.push(message.method);
  const steps = [];
  out = nextSent();
  const call = client.callTool('slow', {word: 'café'}, {onprogress: (p) => steps.push(p.progress)});
  const request = await out;
  const token = request.params._meta.progressToken;
  notify('notifications/progress', {progressToken: token, progress: 1, total: 2});
  notify('notifications/progress', {progressToken: 999, progress: 5});
  notify('notifications/message', {level: 'info', data: 'x'});
  const content = [{type: 'text', text: 'über'}];
  const response = {jsonrpc: '2.0', id: request.id, result: {content}};
  transport.onmessage(response);
  await call;

  const stats = await new Promise((resolve) => client.watchStats(resolve, 5));
  out = nextSent();
  const left = client.listTools().catch((error) => error.code);
  await out;
  await client.close();
  const closedCode = await left;
  const askedAtClose = statsAsked;
  // the watcher stopped with the connection: ten of its periods pass without a call
  await new Promise((resolve) => setTimeout(resolve, 50));
  const bytes = (value) => new TextEncoder().encode(JSON.stringify(value)).length;
  return {pong, refused, notes, steps, stats, closedCode,
          statsAfterClose: statsAsked - askedAtClose, history: client.history,
          requestBytes: bytes(request), responseBytes: bytes(response)};
}
"""


@pytest.mark.engines("aiortc", reason="no WebRTC connection: one run is enough")
async def test_mcp_client_answers_the_server_reports_progress_and_keeps_a_history() -> None:
    """McpClient over a fake transport in the page: what it answers, routes and records."""
    async with rendezvous(HOST_TOKEN) as server, page_on(server) as page:
        out: dict[str, Any] = await page.evaluate(MCP_CLIENT_WITH_A_FAKE_TRANSPORT)
    assert out["pong"] == {"jsonrpc": "2.0", "id": "p1", "result": {}}
    assert out["refused"]["id"] == 7
    assert out["refused"]["error"]["code"] == -32601
    assert out["notes"] == ["notifications/progress"] * 2 + ["notifications/message"]
    assert out["steps"] == [1]  # the progress of another token is not this call's
    assert out["stats"] == {"rtt": 0.002, "bytesSent": 10, "bytesReceived": 20}
    assert out["closedCode"] == "peer-gone"
    assert out["statsAfterClose"] == 0
    records = {r["method"]: r for r in out["history"]}
    assert [r["method"] for r in out["history"]] == ["initialize", "tools/call", "tools/list"]
    call = records["tools/call"]
    assert (call["target"], call["outcome"], call["error"]) == ("slow", "ok", None)
    # UTF-8 bytes of the JSON text: "é" and "ü" count two each
    assert (call["requestBytes"], call["responseBytes"]) == (
        out["requestBytes"],
        out["responseBytes"],
    )
    assert call["duration"] >= 0
    assert (records["tools/list"]["outcome"], records["tools/list"]["error"]) == (
        "error",
        "connection closed",
    )
    assert records["tools/list"]["responseBytes"] is None


async def test_inspector_explains_a_wrong_token() -> None:
    async with python_server() as server, page_on(server) as page:
        await page.fill("#token", "not-the-token")
        await page.click("#connect")
        await page.wait_for_selector('body[data-state="failed"]', timeout=15_000)
        error = await page.text_content("#error") or ""
        assert "Wrong token, or no server has registered this room" in error


BROWSER_ROUND_TRIP = """
async ([url, room, token, size]) => {
  const m = await import('/mcp-webrtc.js');
  const client = await m.connectClient(url, room, token);
  const hex = async (text) => Array.from(new Uint8Array(
      await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))),
    (b) => b.toString(16).padStart(2, '0')).join('');
  // 5 MiB result to the browser
  const result = await client.callTool('blob', {size, seed: 5});
  const received = result.content[0].text;
  // 5 MiB argument from the browser
  let sent = '';
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const block = Array.from({length: 4096}, (_, i) => alphabet[(i * 7) % alphabet.length]).join('');
  while (sent.length < size) sent += block;
  sent = sent.slice(0, size);
  const digest = (await client.callTool('digest', {data: sent})).content[0].text;
  const info = await client.transport.connectionInfo();
  await client.close();
  return {receivedLength: received.length, receivedHash: await hex(received),
          sentHash: await hex(sent), serverDigest: digest, pair: info.localCandidateType};
}
"""


async def test_five_mib_both_ways_between_browser_and_python_byte_exact() -> None:
    size = 5 * 1024 * 1024
    async with python_server() as server, page_on(server) as page:
        out: dict[str, Any] = await page.evaluate(
            BROWSER_ROUND_TRIP, [server.url, "lab", CLIENT_TOKEN, size]
        )
    expected = payload(size, seed=5)
    assert out["receivedLength"] == size
    assert out["receivedHash"] == hashlib.sha256(expected.encode()).hexdigest()
    assert out["serverDigest"] == f"{out['sentHash']}:{size}"
    assert out["pair"] in ("host", "prflx")


HOST_TOOLS = """
async ([url, room, hostToken, clientToken]) => {
  const m = await import('/mcp-webrtc.js');
  window.pageHost = await m.hostTools(url, room, hostToken, clientToken, {
    page_title: {description: 'The title of this page', handler: () => document.title},
    multiply: {
      description: 'Multiply two numbers in the browser',
      inputSchema: {type: 'object', properties: {a: {type: 'number'}, b: {type: 'number'}}},
      handler: ({a, b}) => String(a * b),
    },
  }, {name: 'chromium-tab'});
  return true;
}
"""


async def test_python_client_calls_tools_hosted_by_the_page() -> None:
    async with rendezvous(HOST_TOKEN) as server, page_on(server) as page:
        assert await page.evaluate(HOST_TOOLS, [server.url, "tab", HOST_TOKEN, CLIENT_TOKEN])
        transport = connect(server.url, room="tab", token=CLIENT_TOKEN, options=options())
        async with mcp_client(transport) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == {"page_title", "multiply"}
            assert text_of(await client.call_tool("multiply", {"a": 6, "b": 7})) == "42"
            title = text_of(await client.call_tool("page_title", {}))
            assert title == "mcp-webrtc inspector"
            # a large argument from Python to the page goes in chunks the page reassembles
            big = await client.call_tool("multiply", {"a": 2, "b": 3, "pad": "x" * 400_000})
            assert text_of(big) == "6"


@asynccontextmanager
async def signing_server(identity: Identity) -> AsyncIterator[RendezvousServer]:
    async with (
        rendezvous(HOST_TOKEN) as server,
        serving(server.url, HOST_TOKEN, CLIENT_TOKEN, options=options(identity=identity)),
    ):
        yield server


@pytest.mark.parametrize("pinned", ["right", "wrong"])
async def test_the_inspector_pins_the_server_key(pinned: str) -> None:
    """The page checks the Python server's signature with WebCrypto Ed25519 (§8)."""
    identity, other = Identity.generate(), Identity.generate()
    key = (identity if pinned == "right" else other).public.line
    async with signing_server(identity) as server, page_on(server) as page:
        await page.fill("#token", CLIENT_TOKEN)
        await page.fill("#server-key", key)
        await page.click("#connect")
        if pinned == "right":
            await page.wait_for_selector('body[data-state="connected"]', timeout=30_000)
            shown = await page.evaluate("window.mcpInspector.client.transport.peerKey")
            assert shown == identity.public.line
        else:
            await page.wait_for_selector('body[data-state="failed"]', timeout=15_000)
            assert "not the expected one" in (await page.text_content("#error") or "")


SIGNING_HOST = """
async ([url, room, hostToken, clientToken]) => {
  const m = await import('/mcp-webrtc.js');
  const identity = await m.generateIdentity();
  window.pageHost = await m.hostTools(url, room, hostToken, clientToken, {
    page_title: {description: 'The title of this page', handler: () => document.title},
  }, {name: 'signed-tab', identity});
  return identity.line;
}
"""


async def test_a_page_with_an_identity_is_pinned_by_a_python_client() -> None:
    async with rendezvous(HOST_TOKEN) as server, page_on(server) as page:
        line = await page.evaluate(SIGNING_HOST, [server.url, "tab", HOST_TOKEN, CLIENT_TOKEN])
        pinned = options(expect_peer_keys=(line,))
        transport = connect(server.url, room="tab", token=CLIENT_TOKEN, options=pinned)
        async with mcp_client(transport) as client:
            assert text_of(await client.call_tool("page_title", {})) == "mcp-webrtc inspector"
            assert transport.connection_info().peer_key == line
        wrong = options(expect_peer_keys=(Identity.generate().public.line,))
        transport = connect(server.url, room="tab", token=CLIENT_TOKEN, options=wrong)
        with pytest.raises(PeerIdentityError):
            async with transport:
                pass


IDENTITY_VECTORS_IN_PAGE = """
async (vectors) => {
  const m = await import('/mcp-webrtc.js');
  const unhex = (t) => Uint8Array.from(t.match(/../g), (b) => parseInt(b, 16));
  const outcomes = [];
  for (const v of vectors) {
    let verified = null;
    try { verified = await m.verifyDescription(v.type, v.sdp, v.offer ?? null); }
    catch (error) { verified = error.code; }
    let resigned = null;
    if (v.valid) {
      const signer = await m.identityFromSeed(unhex(v.seed));
      const plain = v.sdp.replace(/;identity=[^\\r\\n]*/, '');
      resigned = (await m.signDescription(signer, v.type, plain, v.offer ?? null)) === v.sdp;
    }
    outcomes.push([verified, resigned]);
  }
  return outcomes;
}
"""


async def test_the_page_agrees_with_the_identity_vectors() -> None:
    """The spec's identity vectors (docs/protocol.md §8) in Chromium's WebCrypto."""
    from .test_protocol_spec import VECTORS

    vectors = [v for v in VECTORS if v["kind"] == "identity"]
    async with python_server() as server, page_on(server) as page:
        outcomes = await page.evaluate(IDENTITY_VECTORS_IN_PAGE, vectors)
    for vector, (verified, resigned) in zip(vectors, outcomes, strict=True):
        if vector["valid"]:
            assert verified == " ".join(vector["key"].split()[:2])
            assert resigned is True
        else:
            assert verified == "peer-identity", vector["why"]


async def test_the_page_releases_its_connection_when_the_server_leaves() -> None:
    """Regression: a session ended by the remote side left the page's RTCPeerConnection
    and its rendezvous WebSocket open."""
    async with rendezvous(HOST_TOKEN) as server, page_on(server) as page:
        async with serving(server.url, HOST_TOKEN, CLIENT_TOKEN, make_server("leaving")):
            await page.evaluate(
                """async ([url, token]) => {
                  const m = await import('/mcp-webrtc.js');
                  window.leaving = await m.connectClient(url, 'lab', token);
                  window.leavingClosed = false;
                  window.leaving.onclose = () => { window.leavingClosed = true; };
                }""",
                [server.url, CLIENT_TOKEN],
            )
        # serve stopped: the page hears bye (or the channel closing) and cleans up
        await page.wait_for_function("window.leavingClosed === true", timeout=15_000)
        state = await page.evaluate(
            "[window.leaving.transport.pc.connectionState,"
            " window.leaving.transport.signaling._ws.readyState]"
        )
        assert state == ["closed", 3]  # RTCPeerConnection closed, WebSocket CLOSED


async def test_a_rendezvous_that_never_answers_times_out_in_the_page() -> None:
    """Regression: start() waited forever for a join reply; the connect timeout now bounds it."""
    from websockets.asyncio.server import serve as ws_serve

    async def silent(ws: Any) -> None:
        await ws.wait_closed()

    async with (
        rendezvous(HOST_TOKEN) as server,
        page_on(server) as page,
        ws_serve(silent, "127.0.0.1", 0) as mute,
    ):
        port = mute.sockets[0].getsockname()[1]
        with anyio.fail_after(20):
            code = await page.evaluate(
                """async (url) => {
                  const m = await import('/mcp-webrtc.js');
                  try { await m.connectClient(url, 'lab', 'x', {connectTimeout: 1500}); }
                  catch (error) { return error.code; }
                  return 'connected?';
                }""",
                f"ws://127.0.0.1:{port}/",
            )
    assert code == "connect-timeout"
