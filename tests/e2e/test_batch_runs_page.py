"""The Batch runs page in a browser, against a running stack: in the nav, its numbers are the warehouse's,
and a run triggered from the trigger form shows up on it.

Chromium is Debian's (``make chromium``); Playwright never downloads a browser. Each test saves a
screenshot under ``.local/artifacts/e2e/``.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from include.stack import Stack
from tests.e2e.conftest import DAG_ID, PROJECT, TODAY, RunningStack, e2e_settings, running

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT / ".local" / "artifacts" / "e2e"


@pytest.fixture(scope="module")
def page_stack(tmp_path_factory) -> Iterator[RunningStack]:
    """A local stack with only the job the page is checked for unpaused: with the Anthropic job
    unpaused too, its scheduled night held the DuckDB warehouse's one slot ahead of the tests' runs."""
    yield from running(Stack(e2e_settings(tmp_path_factory.mktemp("page-stack"))), dag_ids=(DAG_ID,))


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not shutil.which("chromium") and not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `make chromium` (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, page_stack, request, tmp_path):
    """A logged-in page of the stack's UI; its screenshot is saved whatever the test's outcome."""
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    page = context.new_page()
    base = page_stack.stack.api_url
    page.goto(base + "/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/")
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for folder in (tmp_path, ARTIFACTS):
        page.screenshot(path=str(folder / f"{request.node.name}.png"), full_page=True)
    context.close()


def open_batch_runs(page):
    """Click the page's entry in Airflow's nav; the page is the iframe it shows."""
    page.get_by_role("link", name="Batch runs").click()
    page.wait_for_url(re.compile(r"/plugin/batch-runs"))
    frame = page.frame_locator("iframe")
    frame.locator("[data-testid=total-runs]").wait_for()
    return frame


def figure(frame, testid: str) -> str:
    return frame.locator(f"[data-testid={testid}] .value").inner_text()


def money(value: float) -> str:
    """As the page writes dollars: four decimals below a dollar, two above."""
    return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"


def assert_shows_money(shown: str, value: float) -> None:
    """``shown`` is ``value`` as the page writes dollars. A sum of costs that lands on half a unit
    of the last digit may be rounded either way (the database and the browser each sum and round
    in floating point), so what half a unit either side of ``value`` writes passes too."""
    unit = 0.0001 if abs(value) < 1 else 0.01
    neighbours = {money(value + step * unit) for step in (-0.5, 0, 0.5)}
    assert shown in neighbours, f"{shown} is not {money(value)}"


def test_the_pages_numbers_are_the_warehouses_after_a_run(page_stack, page):
    day = TODAY - dt.timedelta(days=3)
    run = page_stack.run_day(day, "e2e_page_numbers", {"row_limit": 120})
    assert run["state"] == "success"

    frame = open_batch_runs(page)
    job = f"job-{DAG_ID}"
    ((runs, rows_in, results, failures, rejected, cost, sync_cost),) = page_stack.warehouse(
        "SELECT count(*), sum(rows_in), sum(results), sum(failures), sum(rejected), sum(cost_usd), "
        "sum(sync_cost_usd) FROM llm_batch_runs WHERE job = ? AND NOT dry_run",
        DAG_ID,
    )
    assert runs >= 1 and results > 0
    frame.locator(f"[data-testid={job}-runs] .value").filter(has_text=str(runs)).wait_for()
    assert figure(frame, f"{job}-rows-in") == f"{rows_in:,}"
    assert figure(frame, f"{job}-results") == f"{results:,}"
    assert figure(frame, f"{job}-failures") == f"{failures:,}"
    assert figure(frame, f"{job}-rejected") == f"{rejected:,}"
    assert_shows_money(figure(frame, f"{job}-cost"), cost)
    assert_shows_money(figure(frame, f"{job}-sync-cost"), sync_cost)
    assert_shows_money(figure(frame, f"{job}-saved"), sync_cost - cost)
    assert frame.locator(f"[data-job={DAG_ID}] canvas").count() >= 2  # the two charts are drawn

    frame.locator("tr[data-run-id=e2e_page_numbers]").click()
    ((shards, batches, rounds, input_tokens),) = page_stack.warehouse(
        "SELECT count(DISTINCT shard) FILTER (WHERE attempt = 1), count(DISTINCT batch_id), max(attempt), "
        "sum(input_tokens) FROM llm_batch_ledger WHERE run_id = ?",
        "e2e_page_numbers",
    )
    ((run_results,),) = page_stack.warehouse(
        "SELECT results FROM llm_batch_runs WHERE run_id = ?", "e2e_page_numbers"
    )
    frame.locator("[data-testid=run-shards]").wait_for()
    assert figure(frame, "run-shards") == str(shards)
    assert figure(frame, "run-batches") == str(batches)
    assert figure(frame, "run-rounds") == str(rounds)
    assert figure(frame, "run-results") == f"{run_results:,}"
    assert input_tokens > 0
    link = frame.get_by_role("link", name="open the DAG run")
    assert link.get_attribute("href").endswith(f"/dags/{DAG_ID}/runs/e2e_page_numbers")
    # A sample of the run's rows, and its rows rejected before sending grouped by reason.
    sample_keys = frame.locator("#run-detail table").last.locator("tbody tr")
    assert sample_keys.count() == min(10, run_results)

    # The page's JSON asks for the UI's login: without it, nothing.
    anonymous = httpx.get(f"{page_stack.stack.api_url}/batch-runs/api/overview", timeout=30)
    assert anonymous.status_code in (401, 403), anonymous.text


def test_a_run_triggered_from_the_form_appears_on_the_page(page_stack, page):
    day = TODAY - dt.timedelta(days=4)
    run_id = "e2e_page_from_the_form"
    page.goto(f"{page_stack.stack.api_url}/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.locator("[name=element_start_date]").fill(day.isoformat())
    dialog.locator("[name=element_end_date]").fill(day.isoformat())
    dialog.locator("[name=element_row_limit]").fill("60")
    dialog.get_by_role("button", name="Advanced Options").click()
    dialog.locator("[name=dagRunId]").fill(run_id)
    dialog.get_by_role("button", name="Trigger").last.click()
    page.wait_for_url(re.compile(f"/runs/{run_id}"))  # the form has created the run
    finished = page_stack.api.wait_for_run(DAG_ID, run_id, timeout=600)
    assert finished["state"] == "success"
    assert finished["conf"]["start_date"] == day.isoformat() and int(finished["conf"]["row_limit"]) == 60

    page.goto(page_stack.stack.api_url + "/")
    frame = open_batch_runs(page)
    row = frame.locator(f"tr[data-run-id={run_id}]")
    row.wait_for()
    ((window, results),) = page_stack.warehouse(
        'SELECT "window", results FROM llm_batch_runs WHERE run_id = ?', run_id
    )
    cells = row.locator("td").all_inner_texts()
    assert cells[1:4] == [DAG_ID, window, run_id] and window == day.isoformat()
    assert cells[5] == f"{results:,}"
