"""The dashboard in headless Chromium (Debian's), driven by Playwright, as an operator uses it.

The real app runs on loopback (in a thread, on a clock the tests can move) with a
generated key set; simulated terminals
(`traffic.py`) keep decisions flowing while the tests sign in, watch the numbers move,
block a card through the page and see its next scan denied. Screenshots land in
`.artifacts/screenshots/` for people to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from aiohttp import web
from playwright.sync_api import Browser, Page, expect, sync_playwright

from terminals_sim.signing import sign_headers
from tests.dashboard.traffic import Traffic
from tests.web.harness import CONFIG_DIR, ROOT
from validator.config_folder import load_config
from validator.keygen import init_keyset
from validator.settings import Settings
from validator.state.store import Block
from validator.web.app import create_app
from validator.web.appkeys import LIVE_FEED, STORE

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / ".artifacts" / "screenshots"
# As the machine notes say: no sandbox as root, and no calls home on a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TRAFFIC_TERMINALS = ["T-BUS-K1-001", "T-BUS-K2-001", "T-BUS-K3-001", "T-BUS-S101-001",
                     "T-GATE-S01-01", "T-GATE-S02-01", "T-GATE-S05-01", "T-GATE-S12-01"]

pytestmark = pytest.mark.timeout(180)


class OffsetClock:
    """The system clock, plus an offset a test may move (to let terminals fall silent)."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def now(self) -> float:
        return time.time() + self.offset_s


@dataclass
class LiveServer:
    url: str
    tokens: dict[str, str]
    keys_dir: Path
    clock: OffsetClock
    app: web.Application
    loop: asyncio.AbstractEventLoop
    runner: web.AppRunner
    stopped: bool = False

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the server's loop (its thread) and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        """Shut the service down as a killed one looks from the page: nothing answers."""
        if not self.stopped:
            self.stopped = True
            self.run(self.runner.cleanup())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _demo_config(target: Path) -> Path:
    """config/ with every spot open round the clock (the tests run at any hour), small
    capacities so that some spots pass 80 % or fill up during a test."""
    shutil.copytree(CONFIG_DIR, target)
    city = target / "city.toml"
    text = city.read_text(encoding="utf-8")
    text = re.sub(r'opens = "\d\d:\d\d"', 'opens = "00:00"', text)
    text = re.sub(r'closes = "\d\d:\d\d"', 'closes = "23:59"', text)
    text = text.replace("capacity_per_day = 8000\n", "capacity_per_day = 400\n", 1)
    text = text.replace("capacity_per_day = 2000\n", "capacity_per_day = 60\n", 1)
    city.write_text(text, encoding="utf-8")
    return target


@contextlib.contextmanager
def serve(base: Path, store_url: str = "memory") -> Iterator[LiveServer]:
    """The validator on loopback, in a thread with its own event loop, on a clock the
    tests can move; stopped (if the test has not stopped it) on the way out."""
    config_dir = _demo_config(base / "config")
    config = load_config(config_dir)
    keys_dir = base / "keys"
    tokens = init_keyset(keys_dir, region=config.city.region, terminal_ids=config.terminals)
    clock = OffsetClock()
    app = create_app(Settings(config_dir=config_dir, keys_dir=keys_dir, store_url=store_url),
                     clock=clock)
    runner = web.AppRunner(app, access_log=None)
    port = _free_port()
    # Everything async happens on the server's own loop, in its thread: the test thread
    # stays free for Playwright's synchronous API.
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="validator", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(runner.setup(), loop).result(30)
    asyncio.run_coroutine_threadsafe(
        web.TCPSite(runner, "127.0.0.1", port).start(), loop).result(30)
    server = LiveServer(f"http://127.0.0.1:{port}", tokens, keys_dir, clock, app, loop, runner)
    try:
        yield server
    finally:
        server.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The validator on the memory store, shared by the module's tests."""
    with serve(tmp_path_factory.mktemp("dashboard-browser")) as server:
        yield server


@pytest.fixture(scope="module")
def traffic(live_server: LiveServer) -> Iterator[Traffic]:
    sim = Traffic(live_server.url, live_server.keys_dir, list(TRAFFIC_TERMINALS),
                  clock=live_server.clock.now)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: `make browser` (Debian package chromium)",
                    pytrace=False)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1680, "height": 1050},
                                  accept_downloads=True, locale="zh-CN")
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


def sign_in(page: Page, server: LiveServer, role: str) -> None:
    page.goto(server.url + "/")
    expect(page).to_have_url(server.url + "/dashboard")
    page.fill("#token", server.tokens[role])
    page.click("#signin-button")
    expect(page.locator("#app")).to_be_visible()
    expect(page.get_by_test_id("live")).to_contain_text("LIVE", timeout=10_000)


def number(page: Page, selector: str) -> int:
    return int(page.locator(selector).inner_text().replace(",", "") or "0")


def wait_for_number(page: Page, selector: str, above: int, timeout_s: float = 15.0) -> int:
    """Poll from Python: the page's CSP forbids eval, which `wait_for_function` with a
    string predicate falls back to whenever the predicate is not true at once."""
    deadline = time.monotonic() + timeout_s
    while (value := number(page, selector)) <= above:
        assert time.monotonic() < deadline, f"{selector} still {value} after {timeout_s} s"
        time.sleep(0.1)
    return value


def test_sign_in_and_watch_live_numbers_move(
    page: Page, live_server: LiveServer, traffic: Traffic
) -> None:
    page.goto(live_server.url + "/")
    expect(page.locator("#signin-form")).to_be_visible()
    page.fill("#token", "not-a-token")
    page.click("#signin-button")
    expect(page.locator("#signin-error")).to_contain_text("Invalid token")
    page.screenshot(path=SHOTS / "01-sign-in.png")

    sign_in(page, live_server, "viewer")
    expect(page.locator("#actions")).to_be_hidden()  # a viewer gets no admin actions
    wait_for_number(page, "#k-accepted", 0)
    first = number(page, "#k-accepted") + number(page, "#k-denied")
    time.sleep(4)  # two or more ticks of the stream
    later = number(page, "#k-accepted") + number(page, "#k-denied")
    assert later > first, (first, later)
    expect(page.locator("#chart-rate rect.bar-ok").first).to_be_attached()
    expect(page.locator("#feed tr").first).to_be_visible(timeout=15_000)
    expect(page.locator("#terminals .term.ok")).to_have_count(len(TRAFFIC_TERMINALS),
                                                              timeout=15_000)
    time.sleep(3)  # let the per-second chart fill a little more before the picture
    page.screenshot(path=SHOTS / "02-overview-viewer.png", full_page=True)

    text = page.locator("body").inner_text()
    for holder in traffic.holders:
        assert holder.card.card_no not in text and holder.ref not in text


def test_admin_blocks_a_card_and_its_next_scan_is_denied(
    page: Page, live_server: LiveServer, traffic: Traffic
) -> None:
    holder = traffic.holder(74)  # not in the traffic's own pool: only this test taps it
    before = traffic.call(traffic.tap("T-BUS-K2-001", holder))
    assert before.status == 200 and before.body["reason"] != "card_blocked"

    sign_in(page, live_server, "admin")
    expect(page.locator("#actions")).to_be_visible()
    page.fill("#block-card", holder.card.card_no)
    page.select_option("#block-reason", "lost")
    page.click("#block-button")
    page.click("#confirm-ok")
    masked = holder.card.card_no[:3] + "****" + holder.card.card_no[-2:]
    expect(page.locator("#block-result")).to_contain_text(f"已挂失 {masked}")

    after = traffic.call(traffic.tap("T-BUS-K2-001", holder))
    assert after.body["decision"] == "deny" and after.body["reason"] == "card_blocked"
    blocked_row = page.locator("#feed tr", has_text=masked)
    expect(blocked_row.first).to_contain_text("挂失卡尝试", timeout=10_000)

    page.fill("#lookup-q", holder.card.card_no)
    page.click("#lookup-button")
    expect(page.locator("#lookup-result")).to_contain_text("2 条记录")
    expect(page.locator("#lookup-rows")).to_contain_text("卡片已挂失")
    assert holder.card.card_no not in page.locator("body").inner_text()

    with page.expect_download() as download_info:
        page.click("#settle-button")
    csv_path = download_info.value.path()
    assert csv_path is not None
    header = Path(csv_path).read_text(encoding="utf-8").splitlines()[0]
    assert "concession_fen" in header
    expect(page.locator("#settle-result")).to_contain_text("settlement-")
    assert page.input_value("#block-card") == ""  # the full number left the screen
    page.evaluate("window.scrollTo(0, 0)")  # a sticky header would land mid-picture
    page.screenshot(path=SHOTS / "03-admin-block-lookup.png", full_page=True)

    page.fill("#block-card", holder.card.card_no)
    page.click("#unblock-button")
    page.click("#confirm-ok")
    expect(page.locator("#block-result")).to_contain_text("已解除挂失")
    again = traffic.call(traffic.tap("T-BUS-K2-001", holder))
    assert again.body["reason"] != "card_blocked"


def test_narrow_screen_has_no_sideways_scroll(
    browser: Browser, live_server: LiveServer, traffic: Traffic
) -> None:
    context = browser.new_context(viewport={"width": 420, "height": 900}, locale="zh-CN")
    try:
        tab = context.new_page()
        sign_in(tab, live_server, "viewer")
        expect(tab.locator("#spots .bar-row")).to_have_count(12)
        overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, overflow
        tab.screenshot(path=SHOTS / "04-narrow-viewer.png", full_page=True)
    finally:
        context.close()


def test_silent_terminals_and_full_spots_stand_out(
    page: Page, live_server: LiveServer, traffic: Traffic
) -> None:
    sign_in(page, live_server, "viewer")
    # The Silk Museum (S12) holds 60 a day here: the traffic fills it within the module.
    expect(page.locator("#spots .spot-full, #spots .spot-warn").first).to_be_attached(
        timeout=60_000)
    expect(page.locator("#alerts")).to_contain_text("S12")

    still_running = ["T-BUS-K1-001", "T-GATE-S01-01", "T-GATE-S12-01"]
    traffic.terminal_ids[:] = still_running
    live_server.clock.offset_s += 11 * 60  # eleven quiet minutes for the other readers
    try:
        went_silent = page.locator("#terminals .term.silent.went")
        expect(went_silent).to_have_count(len(TRAFFIC_TERMINALS) - len(still_running),
                                          timeout=15_000)
        for terminal in still_running:
            expect(page.locator(f'#terminals [data-terminal="{terminal}"]')).to_have_attribute(
                "data-status", re.compile("ok|warn"), timeout=10_000)
        expect(page.locator("#alerts")).to_contain_text("终端失联")
        time.sleep(2)
        page.screenshot(path=SHOTS / "05-silent-terminals-full-spot.png", full_page=True)
    finally:
        live_server.clock.offset_s -= 11 * 60
        traffic.terminal_ids[:] = TRAFFIC_TERMINALS


def test_a_board_no_process_reads_any_more_is_flagged(
    page: Page, live_server: LiveServer, traffic: Traffic
) -> None:
    """Another process "holds" the feed's lease and published a board a minute old:
    this process follows, shows that board, and the page says it is stale."""
    sign_in(page, live_server, "viewer")
    store, feed = live_server.app[STORE], live_server.app[LIVE_FEED]
    stale = dict(feed.snapshot, now=live_server.clock.now() - 60)

    async def hand_over() -> None:
        await store.feed_release(feed.holder)
        assert await store.feed_lease("elsewhere/1/aa", 3600)
        await store.feed_publish(orjson.dumps(stale), 3600)

    async def take_back() -> None:
        await store.feed_release("elsewhere/1/aa")

    live_server.run(hand_over())
    try:
        expect(page.locator("#alerts")).to_contain_text("看板滞后", timeout=10_000)
        expect(page.locator("#alerts")).to_contain_text("s old")
        page.screenshot(path=SHOTS / "06-stale-board.png", full_page=True)
    finally:
        live_server.run(take_back())
    expect(page.locator("#alerts")).not_to_contain_text("看板滞后", timeout=10_000)


def test_blocking_asks_first_and_the_lists_and_audit_show_it(
    page: Page, live_server: LiveServer, traffic: Traffic
) -> None:
    holder = traffic.holder(52)
    card = holder.card.card_no
    masked = card[:3] + "****" + card[-2:]
    store = live_server.app[STORE]
    sign_in(page, live_server, "admin")

    page.fill("#block-card", card)
    page.click("#block-button")
    expect(page.locator("#confirm")).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text(masked)
    page.click("#confirm-cancel")
    expect(page.locator("#confirm")).to_be_hidden()
    expect(page.locator("#block-result")).to_contain_text("已取消")
    assert live_server.run(store.get_block("card", card)) is None  # nothing changed

    page.click("#block-button")
    page.keyboard.press("Escape")  # Escape is a cancel too
    expect(page.locator("#confirm")).to_be_hidden()
    assert live_server.run(store.get_block("card", card)) is None

    page.click("#block-button")
    page.click("#confirm-ok")
    expect(page.locator("#block-result")).to_contain_text(f"已挂失 {masked}")
    assert live_server.run(store.get_block("card", card)) is not None
    live_server.run(store.put_block("holder", holder.ref, Block(reason="fraud")))
    page.click("#blocked-refresh")

    row = page.locator("#blocked-cards tr", has_text=masked)
    expect(row).to_contain_text("lost")
    holder_row = page.locator("#blocked-holders tr", has_text=holder.ref[:8])
    expect(holder_row).to_contain_text("fraud")
    audit_row = page.locator("#audit-rows tr").first
    expect(audit_row).to_contain_text("挂失卡片")
    expect(audit_row).to_contain_text(masked)
    expect(audit_row).to_contain_text("admin")
    expect(page.locator("#audit-panel thead")).to_contain_text("CST")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=SHOTS / "07-blocked-and-audit.png", full_page=True)
    text = page.locator("body").inner_text()
    assert card not in text and holder.ref not in text  # masked and shortened only

    row.locator("button.unblock").click()  # lifted from its row, after asking
    expect(page.locator("#confirm-text")).to_contain_text(masked)
    page.click("#confirm-ok")
    expect(page.locator("#blocked-cards tr", has_text=masked)).to_have_count(0)
    assert live_server.run(store.get_block("card", card)) is None
    expect(page.locator("#audit-rows tr").first).to_contain_text("解除卡片挂失")
    live_server.run(store.delete_block("holder", holder.ref))


def test_the_page_names_venues_and_zones(
    page: Page, live_server: LiveServer, traffic: Traffic
) -> None:
    sign_in(page, live_server, "viewer")
    expect(page.locator("#day")).to_contain_text("CST (UTC+8)")
    expect(page.locator("#feed tr").first).to_be_visible(timeout=15_000)
    venues = page.locator("#feed tr td:nth-child(3)")
    shown = venues.first.inner_text()
    assert not shown.startswith(("spot:", "bus:")), shown
    assert venues.first.get_attribute("title", timeout=5_000) in {  # the id stays at hand
        f"bus:{t.split('-')[2]}" if t.startswith("T-BUS") else f"spot:{t.split('-')[2]}"
        for t in TRAFFIC_TERMINALS}
    expect(page.locator("#routes")).to_contain_text("市公交集团")
    expect(page.locator("#routes")).not_to_contain_text("OP-BUS")


def _huge_board(snapshot: dict[str, Any], now: float) -> dict[str, Any]:
    """The board with 9-digit figures everywhere a KPI tile shows one."""
    return dict(snapshot, now=now + 30,
                totals={"accepted": 987_654_321, "denied": 123_456_789, "deny_pct": 11.1},
                rate={"accept_per_s": 289.5, "deny_per_s": 210.7},
                money=dict(snapshot["money"], concession_yuan="192304567.89"),
                fares={"free": 456_789_012, "half": 234_567_890, "full": 296_297_419},
                credentials={"ssc_card": 654_321_987, "essc_qr": 333_332_334},
                fraud=dict(snapshot["fraud"], counts={"replay": 912_345_678,
                                                       "card_clone": 87_654_321}))


def test_nine_digit_figures_fit_their_tiles_at_1366(
    browser: Browser, live_server: LiveServer, traffic: Traffic
) -> None:
    store, feed = live_server.app[STORE], live_server.app[LIVE_FEED]

    async def hand_over() -> None:
        await store.feed_release(feed.holder)
        assert await store.feed_lease("elsewhere/1/bb", 3600)
        board = _huge_board(feed.snapshot, live_server.clock.now())
        await store.feed_publish(orjson.dumps(board), 3600)

    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    live_server.run(hand_over())
    try:
        tab = context.new_page()
        sign_in(tab, live_server, "viewer")
        expect(tab.locator("#k-fraud")).not_to_have_text("0", timeout=10_000)
        tab.wait_for_timeout(1500)
        tiles = tab.locator(".kpi-value, .kpi-sub")
        assert tiles.count() == 12
        for i in range(tiles.count()):
            tile = tiles.nth(i)
            width = tile.evaluate("node => [node.scrollWidth, node.clientWidth]")
            assert width[0] <= width[1], (tile.inner_text(), width)
            assert "…" not in tile.inner_text()
        accepted = tab.locator("#k-accepted")
        # written in full where it fits, else compactly with the full figure at hand
        assert accepted.inner_text() in {"987,654,321", "9.88亿"}
        if accepted.inner_text() == "9.88亿":
            assert tab.locator(".kpi-value", has=accepted).get_attribute("title") == "987,654,321"
        tab.screenshot(path=SHOTS / "08-nine-digits-1366.png")
    finally:
        context.close()
        live_server.run(store.feed_release("elsewhere/1/bb"))


@pytest.fixture
def redis_live_server(
    tmp_path: Path, redis_url: str
) -> Iterator[LiveServer]:
    """A validator of its own on Redis, for a test that takes its store or itself away."""
    with serve(tmp_path, store_url=redis_url) as server:
        yield server


def test_store_then_service_gone_every_panel_says_stale(
    page: Page, redis_live_server: LiveServer, redis_server: Any
) -> None:
    server = redis_live_server
    panels = page.locator("#app .panel:visible, #app .kpi:visible")
    sign_in(page, server, "viewer")
    expect(page.locator("#store")).to_have_attribute("data-state", "ok", timeout=10_000)
    expect(page.get_by_test_id("stale-tag").first).to_be_hidden()

    redis_server.stop()
    try:
        expect(page.locator("#store")).to_have_attribute("data-state", "bad", timeout=10_000)
        expect(page.locator("#store")).to_contain_text("UNREACHABLE")
        expect(page.locator('#alerts [data-alert="store"]')).to_contain_text("状态存储不可达")
        expect(page.locator("body")).to_have_class(re.compile(r"\bstale\b"))
        stale_tags = page.locator("#app .stale-tag:visible")
        expect(stale_tags).to_have_count(panels.count())
        expect(stale_tags.first).to_contain_text(re.compile(r"stale since \d\d:\d\d:\d\d CST"))
        page.screenshot(path=SHOTS / "09-store-unreachable.png", full_page=True)
    finally:
        redis_server.start()
    expect(page.locator("#store")).to_have_attribute("data-state", "ok", timeout=15_000)
    expect(page.locator("#app .stale-tag:visible")).to_have_count(0)

    server.stop()  # the service itself goes: the page hears nothing more
    expect(page.get_by_test_id("live")).to_contain_text("SERVICE UNREACHABLE", timeout=15_000)
    expect(page.locator("#store")).to_have_attribute("data-state", "unknown")
    expect(page.locator('#alerts [data-alert="service"]')).to_contain_text("服务不可达")
    expect(page.locator("#alerts")).not_to_contain_text("运行正常")
    expect(page.locator("#app .stale-tag:visible")).to_have_count(panels.count())
    expect(page.locator("#app .stale-tag:visible").first).to_contain_text("数据停在")
    page.screenshot(path=SHOTS / "10-service-unreachable.png", full_page=True)


def test_a_terminal_that_stops_calling_in_shows_in_the_offline_panel(
    page: Page, live_server: LiveServer
) -> None:
    terminal = "T-BUS-K8-002"  # no traffic on it: its only contact is this bundle fetch
    secret = bytes.fromhex(orjson.loads(
        (live_server.keys_dir / "terminal-secrets.json").read_text())[terminal])
    path = "/v1/terminal/bundle"
    headers = sign_headers(terminal, secret, "GET", path, b"", int(live_server.clock.now()))
    with urllib.request.urlopen(urllib.request.Request(live_server.url + path,
                                                       headers=headers)) as resp:
        assert resp.status == 200
    sign_in(page, live_server, "viewer")
    row = page.locator(f'#offline-rows [data-terminal="{terminal}"]')
    expect(row).to_have_attribute("data-status", "online", timeout=10_000)
    live_server.clock.offset_s += 11 * 60
    try:
        expect(row).to_have_attribute("data-status", "offline", timeout=10_000)
        expect(row.locator(".bundle-age")).to_have_text("11m")
        expect(row.locator(".pending")).not_to_have_text("–")
        page.locator("#offline-panel").screenshot(path=SHOTS / "09-offline-terminals.png")
    finally:
        live_server.clock.offset_s -= 11 * 60
