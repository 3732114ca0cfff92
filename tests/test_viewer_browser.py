"""The viewer end to end in headless Chromium: map, time controls, agent and town panels, live mode.

The run is the town as the engine recorded it with the scripted ``fake:`` model (the
``recorded_town`` fixture); live mode follows a copy of it while the run store's writer adds steps.

Needs Debian's chromium at /usr/bin/chromium (``scripts/install-browser.sh``) and the
``playwright`` package; Playwright's own browser downloads are never used. A missing browser fails
these tests, so a CI machine without one cannot pass silently; set ``SOCIETAS_SKIP_BROWSER=1`` to
skip them on purpose.
"""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn
from PIL import Image
from playwright import sync_api

from societas.engine.events import Event
from societas.engine.runstore import RunStore
from societas.viewer.app import create_app
from support.network import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if os.environ.get("SOCIETAS_SKIP_BROWSER") == "1":
    pytest.skip("SOCIETAS_SKIP_BROWSER=1: browser tests skipped", allow_module_level=True)
if not CHROMIUM.exists():
    pytest.fail(
        "the viewer's browser tests need /usr/bin/chromium: run scripts/install-browser.sh "
        "(or set SOCIETAS_SKIP_BROWSER=1 to skip them on purpose)",
        pytrace=False,
    )

AGENTS = 8  # the town's people
START = datetime(2026, 2, 13, 7, 0)  # the town's first morning


class ViewerServer:
    """The viewer app served by uvicorn on a background thread."""

    def __init__(self, run_dir: Path) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(run_dir, allowed_hosts=["127.0.0.1"], poll_s=0.1),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> ViewerServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the viewer server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield page
    context.close()
    assert errors == [], f"the page reported errors: {errors}"


def wait_for(page: Any, expression: str, timeout: float = 15.0) -> Any:
    """Poll a JS expression until it is truthy (the page's CSP forbids eval-based waiting)."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(f"() => {expression}")
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.1)


def positions(page: Any) -> list[float]:
    return list(page.evaluate("() => Array.from(window.societasViewer.mapView.state.positions)"))


def open_viewer(page: Any, url: str) -> None:
    page.goto(url)
    wait_for(page, "window.societasViewer && window.societasViewer.mapView.state !== null")


def at(step: int) -> datetime:
    return START + timedelta(minutes=10 * step)


def record(store: RunStore, step: int, kind: str, agent: str, data: dict[str, Any]) -> None:
    """One more event, recorded by the run store's writer as the engine records it."""
    store.commit_step(
        step, at(step), [Event(step=step, time=at(step), kind=kind, agent=agent, data=data)]
    )


def test_replay_a_recorded_run(page: Any, recorded_town: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(recorded_town, run_dir)
    with RunStore.open(run_dir) as store:
        last = store.last_step()
        assert last is not None and last > 20
        # The scripted model's lines name no news item: at the end Rosa (who knows from the
        # start) tells Mei of her campaign, so that the diffusion chart has a line that rises.
        talk = {"id": "x", "participants": ["Rosa Alvarez", "Mei Chen"], "place": "park"}
        record(store, last, "conversation", "Rosa Alvarez", talk | {"summary": ""})
        line = {"conversation_id": "x", "speaker": "Rosa Alvarez", "listeners": ["Mei Chen"]}
        record(store, last, "utterance", "Rosa Alvarez", line | {"text": "My council campaign!"})
        memories = [
            stored.event.data["text"]
            for stored in store.iter_events(kinds="memory", agent="Mateo Alvarez", to_step=18)
        ]
    songs = [text for text in memories if "new song" in text.lower()]
    assert songs, "the recorded run gives Mateo a memory of the new song"
    with ViewerServer(run_dir) as server:
        open_viewer(page, server.url)

        # The agents are on the map, listed, and the clock shows the start of the run.
        start = positions(page)
        assert not any(np.isnan(start)), "every agent has a position at step 0"
        assert page.locator(".agent-row").count() == AGENTS
        assert page.locator("#clock-time").inner_text() == START.strftime("%H:%M")
        assert page.locator("#run-status").inner_text().lower() == "finished"

        # Scrub to the end of the run: the clock moves and agents are elsewhere.
        page.locator("#scrubber").focus()
        page.keyboard.press("End")
        wait_for(page, f"window.societasViewer.mapView.state.step === {last}")
        assert positions(page) != start
        assert page.locator("#step-label").inner_text() == f"step {last} / {last}"
        assert page.locator("#clock-time").inner_text() == at(last).strftime("%H:%M")

        # Jump to a game time.
        page.fill("#jump-input", "08:00")
        page.press("#jump-input", "Enter")
        wait_for(page, "window.societasViewer.playback.t === 6")
        assert page.locator("#clock-time").inner_text() == "08:00"

        # Play for a moment, then pause.
        page.select_option("#speed", "8")
        page.click("#play")
        wait_for(page, "window.societasViewer.playback.t > 8")
        page.click("#play")
        paused_at = page.evaluate("() => window.societasViewer.playback.t")
        page.wait_for_timeout(300)
        assert page.evaluate("() => window.societasViewer.playback.t") == paused_at

        # Click an agent on the canvas: the agent panel opens with their memories.
        page.evaluate("() => window.societasViewer.playback.seek(18)")
        wait_for(page, "window.societasViewer.mapView.state.step === 18")
        x, y = page.evaluate("() => window.societasViewer.mapView.screenOf(2)")
        box = page.locator("#map").bounding_box()
        page.mouse.click(box["x"] + x, box["y"] + y)
        name = page.evaluate("() => window.societasViewer.names[2]")
        assert name == "Mateo Alvarez"
        wait_for(page, "document.querySelectorAll('#tab-agent .memory').length > 0")
        assert page.locator("#tab-agent h2").inner_text() == name
        assert page.locator("#tab-agent .plan li").count() > 0
        first_memory = page.locator("#tab-agent .memory-text").first.inner_text()
        assert first_memory
        assert page.locator("#tab-agent .importance").first.inner_text().startswith("★")

        # Search the agent panel (any case): only the memories of the new song match.
        page.fill("#agent-search", "NEW SONG")
        wait_for(page, f"document.querySelectorAll('#tab-agent .memory').length === {len(songs)}")
        assert page.locator("#tab-agent .memory-text").first.inner_text() == songs[-1]

        # The town panel draws diffusion, the network and model usage.
        page.click("#tab-button-town")
        # calls and tokens per agent-hour, calls, tokens, and the share of the prompt reused
        wait_for(page, "document.querySelectorAll('#tab-town .figure').length === 5")
        wait_for(page, "document.querySelectorAll('#tab-town .legend li:not(.muted)').length > 0")
        legend = page.locator("#tab-town .legend").inner_text()
        assert "running for the town council" in legend and "2/8 by now" in legend
        assert "agent-hour" in page.locator("#tab-town .usage").inner_text()
        assert "prompt reused" in page.locator("#tab-town .usage").inner_text()

        shot = page.screenshot()
        (tmp_path / "viewer.png").write_bytes(shot)
        pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("L"), dtype=np.float64)
        assert pixels.shape == (860, 1400)
        assert pixels.std() > 20, "the screenshot is not blank"
        map_box = page.locator("#map").bounding_box()
        region = pixels[
            int(map_box["y"]) : int(map_box["y"] + map_box["height"]),
            int(map_box["x"]) : int(map_box["x"] + map_box["width"]),
        ]
        assert len(np.unique(region.round())) > 30, "the map shows more than a few flat colours"


def test_follow_a_run_while_it_is_written(page: Any, running_town: RunStore) -> None:
    store = running_town
    last = store.last_step()
    assert last is not None
    with ViewerServer(store.directory) as server:
        open_viewer(page, server.url)
        assert page.locator("#run-status").inner_text().lower() == "● live"
        assert page.locator("#follow-box").is_visible()
        page.check("#follow")

        for k in (1, 2, 3):
            move = {"tile": [20, 10 + k], "place": "Alder Creek:main street"}
            record(store, last + k, "move", "Rosa Alvarez", move)
        wait_for(page, f"window.societasViewer.playback.lastStep === {last + 3}")
        wait_for(page, f"window.societasViewer.mapView.state.step === {last + 3}")
        assert positions(page)[:2] == [20.0, 13.0], "the newest position is drawn"
        assert page.locator("#scrubber").get_attribute("max") == str(last + 3)

        store.set_meta("status", "finished")
        wait_for(page, "document.getElementById('run-status').textContent === 'finished'")
        assert not page.locator("#follow-box").is_visible()
