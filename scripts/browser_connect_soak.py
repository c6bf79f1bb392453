"""Connect the inspector page (Chromium) to a Python server again and again, under CPU load,
and count the connects that never finish: the page stays "connecting" after the data
channel opened. Each run starts a rendezvous, `serve` (aiortc) and a browser, and ends
them; each connect waits at most --timeout seconds; --spin busy processes load the cores
for the whole run and end with it.

    scripts/netns-run .venv/bin/python scripts/browser_connect_soak.py --runs 300 --spin 2

Prints one line per stuck connect and a summary; exits 1 if any connect stayed stuck.
docs/browser.md ("A first send that cannot be lost") has what it measured.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import test_browser as browser  # noqa: E402


def _spin() -> None:
    while True:
        pass


async def _connect_once(wait: float) -> bool:
    async with browser.python_server() as server, browser.page_on(server) as page:
        await page.fill("#token", browser.CLIENT_TOKEN)
        await page.click("#connect")
        try:
            await page.wait_for_selector('body[data-state="connected"]', timeout=wait * 1000)
        except Exception:  # playwright's TimeoutError
            return False
        return True


async def _main(runs: int, wait: float) -> int:
    stuck = 0
    started = time.monotonic()
    for run in range(1, runs + 1):
        if not await _connect_once(wait):
            stuck += 1
            print(f"run {run}: still connecting after {wait:.0f} s", flush=True)
    elapsed = time.monotonic() - started
    print(f"{stuck} of {runs} connects stuck ({elapsed:.0f} s)")
    return 1 if stuck else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="connects to make (300)")
    parser.add_argument("--spin", type=int, default=2, help="busy processes meanwhile (2)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per connect (15)")
    args = parser.parse_args()
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.spin)]
    for spinner in spinners:
        spinner.start()
    try:
        return anyio.run(_main, args.runs, args.timeout)
    finally:
        for spinner in spinners:
            spinner.terminate()


if __name__ == "__main__":
    sys.exit(main())
