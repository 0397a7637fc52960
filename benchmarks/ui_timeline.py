"""The session page under a long history and a streaming answer, in headless Chromium.

1. first paint: open a session with 10,000 stored events; report the browser's first contentful
   paint and the time until the timeline shows the newest answer;
2. Reflex deltas: while a (fake) sandbox streams tokens into a session open in the browser, sum
   the bytes of the Reflex state socket's frames and divide by the tokens streamed.

    .venv/bin/python benchmarks/ui_timeline.py [--tokens 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from _harness import FakeSandbox, seed, start, table
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from sandbox.protocol import Token
from tests.browser import start_chromium
from tests.e2e.conftest import sign_in_link
from tests.e2e.test_session_page import seed_long_session


def socket_bytes(driver: webdriver.Chrome) -> tuple[int, int]:
    """(frames, bytes) received on WebSockets since the last call."""
    frames = size = 0
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.webSocketFrameReceived":
            frames += 1
            size += len(message["params"]["response"]["payloadData"])
    return frames, size


async def stream(server, seeded, tokens: int) -> None:
    sandbox = FakeSandbox(server, seeded)
    await sandbox.connect()
    await asyncio.sleep(1.0)
    for i in range(tokens):
        text = f"word{i} " if i % 25 else f"word{i}\n\n"  # paragraphs, as answers have
        await sandbox.send(Token(message_id=seeded.message_id, text=text))
        await asyncio.sleep(0.05)  # 20 coalesced tokens a second, as a sandbox sends them
    await asyncio.sleep(1.0)
    await sandbox.close()


def main(tokens: int) -> dict:
    server = start()
    driver = start_chromium(Path(tempfile.mkdtemp()), performance_log=True)
    try:
        driver.get(sign_in_link(server))  # signs this browser in, then builds caches; not measured
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "sidebar"))
        long_id = seed_long_session(server)
        started = time.perf_counter()
        driver.get(f"{server.url}/sessions/{long_id}")
        WebDriverWait(driver, 60).until(lambda d: "Answer number 2499" in d.find_element(By.ID, "timeline").text)
        timeline_ms = (time.perf_counter() - started) * 1000
        fcp = driver.execute_script(
            "const e = performance.getEntriesByName('first-contentful-paint')[0]; return e ? e.startTime : null;"
        )
        seeded = seed(server)
        driver.get(f"{server.url}/sessions/{seeded.session_id}")
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "composer"))
        time.sleep(1.0)
        socket_bytes(driver)  # discard what loading the page sent
        asyncio.run(stream(server, seeded, tokens))
        frames, size = socket_bytes(driver)
        return {
            "first_paint_ms": round(float(fcp), 1) if fcp is not None else None,
            "timeline_ms": round(timeline_ms, 1),
            "tokens": tokens,
            "frames": frames,
            "delta_bytes_per_token": round(size / tokens, 1),
        }
    finally:
        driver.quit()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200)
    result = main(parser.parse_args().tokens)
    print(table([result], list(result)))
    print(
        json.dumps(
            {"first_paint_ms": result["first_paint_ms"], "delta_bytes_per_token": result["delta_bytes_per_token"]}
        )
    )
