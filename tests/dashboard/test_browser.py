"""End to end in a real headless browser (Debian's chromium driven by Playwright): the service with its
dashboard serves over HTTP from a thread, frames go in through the service's own ingest path, and the
browser signs in, watches the fleet update live, sees a DO build-up raise an alarm without a reload,
records a harvest (and has bad input refused next to the field), and downloads an export.

Skipped with a reason where chromium or Playwright is missing (failed in CI, ALGAFLOW_REQUIRE_SERVICES=1).
Timings are printed, not asserted.
"""

import contextlib
import io
import os
import shutil
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from algaflow.store.base import to_time_us
from tests.service.conftest import free_port
from tests.service.test_pipeline import culture_frames

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def require_browser():
    reason = None
    if CHROMIUM is None:
        reason = "chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (pip install playwright)"
    if reason is None:
        return
    if os.environ.get("ALGAFLOW_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + " (ALGAFLOW_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture
def live(tmp_path):
    """The service (HTTP only, live pipeline running) with the dashboard, on a free port, three units."""
    require_browser()
    import uvicorn

    from algaflow.dashboard.app import mount_dashboard
    from algaflow.service.auth import issue_user_token
    from algaflow.service.config import Settings
    from algaflow.service.server import Service

    port = free_port()
    settings = Settings.model_validate({"store": {"url": str(tmp_path / "algaflow.db")}, "mqtt": {"mode": "off"},
                                        "http": {"port": port}, "lake": {"compact_every_s": 0}})  # fmt: skip
    service = Service(settings)
    for unit in ("r1", "r2", "r3"):
        service.store.register_unit(unit, {"strain": "chlorella_vulgaris", "volume_l": 80.0, "site": {"name": "lab"},
                                           "sensors": ["od750", "do_tank", "temp_tank"]})  # fmt: skip
    mount_dashboard(service.app, service.store, service.pipeline, refresh_s=1.0,
                    last_heard=service.ingestor.last_heard)  # fmt: skip
    service.start()
    server = uvicorn.Server(uvicorn.Config(service.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    # On a fresh clone the chain's kernels compile for about a minute under the test load; the service does it
    # as it starts, and the views are timed from when it is done.
    assert service.kernels_ready.wait(300), "the fusion kernels did not compile within 5 minutes"
    # cultures that end near now: their frames count as fresh, and the form's default time (now) follows them
    start = datetime.now(UTC) - timedelta(hours=120)
    frames = {unit: [f.model_copy(update={"time": start + (f.time - culture_frames(unit, 1)[0].time)})
                     for f in culture_frames(unit, steps=1200, seed=k)]
              for k, unit in enumerate(("r1", "r2", "r3"))}  # fmt: skip
    service.tokens = {role: issue_user_token(service.store, role) for role in ("operator", "reader", "admin")}
    service.url = f"http://127.0.0.1:{port}"
    service.frames = frames
    yield service
    server.should_exit = True
    thread.join(10)
    service.stop()


def ingest(service, unit: str, first: int, end: int) -> None:
    service.ingestor.ingest(None, service.frames[unit][first:end])


def sign_in(page, service, role: str) -> None:
    """Sign in and wait until the token is kept (a navigation before that would find no token)."""
    from playwright.sync_api import expect

    page.goto(service.url + "/")
    page.fill("#token-input", service.tokens[role])
    page.click("#sign-in-button")
    expect(page.locator("#who")).to_contain_text(f"signed in: {role}", timeout=20_000)


def fleet_cell(page, unit: str, column: str) -> str:
    row = page.locator("#fleet-table tr", has=page.locator(f"a:text-is('{unit}')"))
    return row.locator(f"td[data-dash-column='{column}']").inner_text()


def test_the_operator_workflow_in_a_real_browser(live, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    for unit in ("r1", "r2", "r3"):
        ingest(live, unit, 0, 600)  # DO below the degas threshold until step 900
    live.pipeline.wait()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(accept_downloads=True)
        began = time.perf_counter()
        sign_in(page, live, "operator")
        expect(page.locator("#fleet-table a")).to_have_count(3, timeout=20_000)
        print(f"\nfleet view with 3 units after sign-in: {time.perf_counter() - began:.2f} s")
        assert [a.inner_text() for a in page.locator("#fleet-table a").all()] == ["r1", "r2", "r3"]
        assert fleet_cell(page, "r1", "alarms") == ""

        # live: r1's DO builds up; the alarm shows in the fleet view without a reload
        page.evaluate("window.__marker = 'no reload'")
        ingest(live, "r1", 600, 1000)
        sent = time.perf_counter()
        fleet_alarms = page.locator("#fleet-table tr", has=page.locator("a:text-is('r1')")).locator(
            "td[data-dash-column='alarms']")  # fmt: skip
        expect(fleet_alarms).to_have_text("dissolved O2 high: degas", timeout=15_000)
        print(f"DO alarm in the fleet view {time.perf_counter() - sent:.2f} s after the frames were stored")
        assert page.evaluate("window.__marker") == "no reload"
        page.click("#nav-alarms")
        expect(page.locator("#alarms-table tr", has=page.locator("td[data-dash-column='unit']", has_text="r1"))
               .locator("td[data-dash-column='what']", has_text="degas")).to_have_count(1, timeout=10_000)  # fmt: skip
        assert page.evaluate("window.__marker") == "no reload"
        degas_row = page.locator("#alarms-table tr", has=page.locator("td[data-dash-column='what']", has_text="degas"))
        degas_row.locator("input[type='checkbox']").check()
        page.click("#acknowledge")
        expect(page.locator("#acknowledge-message")).to_have_text("1 alarm(s) acknowledged", timeout=10_000)
        expect(degas_row.locator("td[data-dash-column='acknowledged']")).to_have_text("yes", timeout=10_000)
        assert live.store.events("r1").kind.tolist()[-1] == "alarm_ack"

        # the unit view: bad input is refused next to its field, and nothing is stored
        page.goto(live.url + "/unit/r2")
        expect(page.locator("#growth-graph .main-svg").first).to_be_visible(timeout=20_000)
        # its sensors' health and worth over the last day, and the calibration its chain uses
        od_row = page.locator("#sensor-health tr", has=page.locator("td[data-dash-column='sensor']", has_text="od750"))
        expect(od_row.locator("td[data-dash-column='status']")).to_have_text("used", timeout=20_000)
        expect(page.locator("#calibration-line")).to_contain_text("catalog slope", timeout=10_000)
        events_before = len(live.store.events("r2"))
        page.fill("input#event-value", "-0.2")
        page.click("#event-submit")
        expect(page.locator("#event-value-error")).to_contain_text("fraction", timeout=10_000)
        page.get_by_label("dry-weight sample (g/L)").check()
        page.fill("input#event-value", "500")
        page.click("#event-submit")
        expect(page.locator("#event-value-error")).to_contain_text("dry weight", timeout=10_000)
        page.get_by_label("harvest done (fraction removed)").check()
        page.fill("input#event-value", "0.5")
        page.fill("input#event-time", (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"))
        page.click("#event-submit")
        expect(page.locator("#event-time-error")).to_contain_text("future", timeout=10_000)
        assert len(live.store.events("r2")) == events_before and live.store.readings("r2", ["dry_weight"]).empty

        # a harvest recorded in the form appears in the events log and in the growth curve (at a time inside
        # the 24 h the view shows: r2's data end 60 h ago)
        page.fill("input#event-time", live.frames["r2"][550].time.strftime("%Y-%m-%dT%H:%M"))
        page.click("#event-submit")
        expect(page.locator("#event-message")).to_contain_text("recorded harvest", timeout=10_000)
        assert live.store.events("r2").kind.tolist()[-1] == "harvest"
        expect(page.locator("#events-table td[data-dash-column='kind']").first).to_have_text("harvest",
                                                                                              timeout=10_000)
        expect(page.locator("#growth-graph .annotation-text", has_text="harvest 50%")).to_have_count(1, timeout=10_000)

        # export: the download holds the unit's readings
        with page.expect_download(timeout=30_000) as download:
            page.click("#export-csv")
        archive = zipfile.ZipFile(io.BytesIO(download.value.path().read_bytes()))
        telemetry = pd.read_csv(archive.open("telemetry.csv"))
        assert len(telemetry) == len(live.store.readings("r2")) > 0
        assert set(telemetry.unit_id) == {"r2"}

        # a read-only user sees the unit but cannot record
        page.context.clear_cookies()
        page.evaluate("window.sessionStorage.clear()")
        sign_in(page, live, "reader")
        page.goto(live.url + "/unit/r3")
        expect(page.locator("#event-submit")).to_be_disabled(timeout=20_000)
        browser.close()
    assert to_time_us(live.frames["r1"][999].time) == live.store.last_frame("r1")[1]


def test_a_month_of_twenty_sensors_and_a_hundred_units_stay_responsive(live):
    """Timings for the note (printed, not asserted): the unit view over 30 days of 20 sensors at 1 min, and
    the fleet view of 100 units."""
    from playwright.sync_api import expect, sync_playwright

    from algaflow.store import ReadingBatch

    sensors = ["temp_tank", "temp_tube", "ph_tank", "ph_tube", "do_tank", "do_tube", "dco2_tank", "od680", "od750",
               "turbidity_tank", "turbidity_tube", "par_surface", "par_back", "led_power", "co2_gas_in",
               "co2_gas_out", "o2_gas_out", "air_flow", "water_flow", "temp_ambient"]  # fmt: skip
    end_us = to_time_us(datetime.now(UTC))
    times = end_us - (pd.RangeIndex(30 * 1440)[::-1].to_numpy() * 60_000_000)
    count = times.size * len(sensors)
    live.store.write_readings(ReadingBatch(["r3"] * count, [s for s in sensors for _ in times],
                                           list(times) * len(sensors), [1.0] * count, [0] * count))  # fmt: skip
    ingest(live, "r3", 0, 1200)
    for k in range(97):
        live.store.register_unit(f"u{k:03d}", {"strain": "chlorella_vulgaris"})
    live.pipeline.wait()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        sign_in(page, live, "reader")
        began = time.perf_counter()
        expect(page.locator("#fleet-table a")).to_have_count(50, timeout=30_000)  # the first page of 100
        print(f"\nfleet view of 100 units: {time.perf_counter() - began:.2f} s")
        began = time.perf_counter()
        page.goto(live.url + "/unit/r3?range=30 days")
        expect(page.locator("#sensor-graph .main-svg").first).to_be_visible(timeout=30_000)
        expect(page.locator("#sensor-graph .annotation-text", has_text="water_flow")).to_have_count(1, timeout=30_000)
        print(f"unit view, 30 days × 20 sensors ({count:,} readings stored): {time.perf_counter() - began:.2f} s")
        expect(page.locator("#sensor-health td[data-dash-column='sensor']")).to_have_count(len(sensors), timeout=30_000)
        print(f"  and its sensor panel (the last day's {1440 * len(sensors):,} raw readings): "
              f"{time.perf_counter() - began:.2f} s")
        assert page.get_by_label("30 days").is_checked()
        browser.close()


def test_an_admin_sees_quarantined_records_on_the_alarms_page_and_an_operator_does_not(live):
    """A dry-weight sample without its value, written straight into the store (no edge lets it in), reaches
    the pipeline: it is quarantined, and the alarms page lists it for an admin only."""
    from playwright.sync_api import expect

    from algaflow.store import ReadingBatch, StoredEvent

    moment = to_time_us(datetime.now(UTC) - timedelta(minutes=30))
    live.store.write_events([StoredEvent("r3", moment, "dry_weight_sample", {})])
    live.pipeline.submit(ReadingBatch([], [], [], [], []), [StoredEvent("r3", moment, "dry_weight_sample", {})])
    live.pipeline.wait()
    assert [item.kind for item in live.pipeline.quarantine.items("r3")] == ["dry_weight_sample"]
    with chromium_browser() as browser:
        page = browser.new_page()
        sign_in(page, live, "admin")
        page.click("#nav-alarms")
        row = page.locator("#quarantine-table tr", has=page.locator("td[data-dash-column='unit']", has_text="r3"))
        expect(row.locator("td[data-dash-column='reason']")).to_contain_text("g_per_l", timeout=15_000)
        expect(row.locator("td[data-dash-column='kind']")).to_have_text("dry_weight_sample")
        operator = browser.new_page()
        sign_in(operator, live, "operator")
        operator.click("#nav-alarms")
        expect(operator.locator("#alarms-table")).to_be_visible(timeout=15_000)
        expect(operator.locator("#quarantine")).to_be_hidden()


@contextlib.contextmanager
def chromium_browser():
    """Playwright driving Debian's chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
