"""The data team's path through the Dagster UI, in a real browser (Debian's Chromium driven by
Playwright): after `chaser-pipeline sync` and a three-month backfill, `chaser-pipeline ui` on the
same home shows the three asset groups, a model's column lineage, each backfilled month's own
figures, and the runs the CLI made. Screenshots of each page are saved (CHASER_SCREENSHOTS)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from chaser_pipeline.demo.generator import generate_demo_warehouse
from chaser_pipeline.models.project import ModelProject
from chaser_pipeline.paths import models_dir
from tests.support.webserver import (
    free_port,
    serving,
    session_processes,
    start_in_own_session,
    stop_session,
    wait_for,
)

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that reaches beyond loopback (this machine's network is closed).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BIN = Path(sys.executable).parent
MONTHS = ("2024-01-01", "2024-03-01")  # the backfill: January to March 2024, one run
MONTH = "2024-02-01"  # the month whose own figures the page must show
MODEL = "int_invoice_balances"
# Read at collection: the autouse fixture clears every CHASER_* variable before each test.
SCREENSHOTS_COPY = os.environ.get("CHASER_SCREENSHOTS", "").strip()


def chromium_or_skip() -> None:
    """Skip (with the reason) where Chromium or Playwright is missing; under CI=true, fail."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[dev]')")
    if missing:
        reason = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def screenshots(tmp_path: Path) -> Iterator[Path]:
    """Screenshots go under the test's tmp path, and are copied to CHASER_SCREENSHOTS if set."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    yield folder
    if SCREENSHOTS_COPY:
        Path(SCREENSHOTS_COPY).mkdir(parents=True, exist_ok=True)
        for shot in folder.glob("*.png"):
            shutil.copy2(shot, Path(SCREENSHOTS_COPY) / shot.name)


def metadata_value(table, key: str) -> str:
    """The value cell of the metadata row named `key`."""
    row = table.locator("tr").filter(has=table.page.get_by_role("cell", name=key, exact=True))
    return row.locator("td").nth(1).inner_text().strip()


def run(command: list[str], env: dict, cwd: Path) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_ui_shows_groups_lineage_month_figures_and_the_cli_runs(tmp_path, screenshots):
    chromium_or_skip()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    warehouse = generate_demo_warehouse(
        tmp_path / "warehouse.duckdb", invoices=400, customers=60, credit_notes=60, seed=7
    ).path
    pipeline_db = tmp_path / "pipeline.duckdb"
    home = tmp_path / "dagster_home"
    env = {
        **os.environ,
        "CHASER_WAREHOUSE_URL": f"duckdb:///{warehouse}",
        "CHASER_DUCKDB_PATH": str(pipeline_db),
        "DAGSTER_HOME": str(home),  # a temporary home: the one `sync` and `ui` share
    }
    # The README's path: a sync from the command line (built-in emulator), then a backfill.
    run([str(BIN / "chaser-pipeline"), "sync"], env, tmp_path)
    run(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "chaser_pipeline.definitions",
            "--select",
            "chaser_invoices,sync_chaser_invoices",
            "--partition-range",
            f"{MONTHS[0]}...{MONTHS[1]}",
        ],
        env,
        tmp_path,
    )
    con = duckdb.connect(str(pipeline_db), read_only=True)
    try:
        rows_by_month = dict(
            con.execute(
                "select substr(date, 1, 7) || '-01', count(*) from chaser_invoices group by 1"
            ).fetchall()
        )
        # the backfill re-planned invoices Chaser already held: unchanged, month by month
        ((sent_in_month,),) = con.execute(
            """select count(*) from chaser_invoices m join chaser_sync.state s
            on s.object = 'invoices' and s.key = m.invoice_id and s.payload_hash is not null
            where m.date like '2024-02-%'"""
        ).fetchall()
    finally:
        con.close()
    in_range = sum(n for m, n in rows_by_month.items() if MONTHS[0] <= m <= MONTHS[1])
    assert rows_by_month[MONTH] != in_range
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        cli_runs = [r.run_id for r in instance.get_runs() if r.tags.get("chaser_pipeline/headless")]
    finally:
        instance.dispose()
    assert len(cli_runs) >= 3  # incremental, monthly, data lag

    port = free_port()
    log = tmp_path / "ui.log"
    proc = start_in_own_session(
        [str(BIN / "chaser-pipeline"), "ui", "--port", str(port)], cwd=tmp_path, env=env, log=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("the UI", serving(base), 120, proc, log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1300})
            page.set_default_timeout(60_000)
            # Dagster's invitation to its community covers the first page a new home shows;
            # once skipped, the home remembers. Should it come back, skip it again.
            invitation = page.get_by_text("Join the Dagster community")
            page.add_locator_handler(
                invitation, lambda _: page.get_by_role("button", name="Skip").click()
            )
            page.goto(f"{base}/runs")
            with contextlib.suppress(PlaywrightTimeout):  # a Dagster that does not invite
                page.get_by_role("button", name="Skip").click(timeout=20_000)
            expect(invitation).to_have_count(0)

            # 1. The asset graph: extract -> models -> sync.
            page.goto(f"{base}/asset-groups")
            expect(page.get_by_text("Global asset lineage")).to_be_visible()
            for group in ("extract", "models", "sync"):
                # in the sidebar's tree and as a node of the graph
                expect(page.get_by_text(group, exact=True).last).to_be_visible()
                assert page.get_by_text(group, exact=True).count() >= 2, group
            expect(page.get_by_text("fetching statuses")).to_have_count(0)
            page.wait_for_timeout(1000)  # the graph settles its layout
            page.screenshot(path=screenshots / "01_asset_groups.png")

            # 2. A model's column lineage, from its metadata entry.
            lineage = ModelProject(models_dir()).column_lineage(MODEL)
            sources = ", ".join(f"{a}.{c}" for a, c in sorted(lineage["due_amount"]))
            page.goto(f"{base}/assets/{MODEL}")
            row = page.locator("tr", has_text="column_lineage")
            row.get_by_text("[Show Markdown]").click()
            dialog = page.get_by_role("dialog").filter(has_text="column_lineage")
            expect(dialog).to_contain_text("invoice_id ← stg_invoices.invoice_id")
            expect(dialog).to_contain_text(f"due_amount ← {sources}")
            page.wait_for_timeout(800)  # the dialog fades in: let a person's view settle
            page.screenshot(path=screenshots / "02_model_column_lineage.png")
            dialog.get_by_role("button", name="Close").click()

            # 3. One month of the three-month backfill carries its own figures.
            page.goto(f"{base}/assets/chaser_invoices?view=partitions&partition={MONTH}")
            metadata = page.locator("table", has_text="run_window")
            expect(metadata).to_contain_text("2024-02-01 to 2024-02-29")
            page.get_by_text("Metadata", exact=True).scroll_into_view_if_needed()
            page.screenshot(path=screenshots / "03_month_of_a_backfill_model.png")
            expect(metadata).to_contain_text("2024-01-01 to 2024-03-31")  # the run's window
            assert metadata_value(metadata, "dagster/row_count") == str(rows_by_month[MONTH])
            assert metadata_value(metadata, "run_row_count") == str(in_range)
            page.goto(f"{base}/assets/sync_chaser_invoices?view=partitions&partition={MONTH}")
            metadata = page.locator("table", has_text="run_window")
            expect(metadata).to_contain_text("2024-02-01 to 2024-02-29")
            page.get_by_text("Metadata", exact=True).scroll_into_view_if_needed()
            page.screenshot(path=screenshots / "04_month_of_a_backfill_sync.png")
            assert metadata_value(metadata, "unchanged") == str(sent_in_month)

            # 4. The runs `chaser-pipeline sync` made are the UI's runs.
            page.goto(f"{base}/runs")
            for run_id in cli_runs:
                expect(page.get_by_text(run_id[:8], exact=True)).to_be_visible()
            expect(page.get_by_text("chaser_incremental_sync").first).to_be_visible()
            page.screenshot(path=screenshots / "05_cli_runs.png")
            browser.close()
    finally:
        stop_session(proc)
    assert session_processes(proc.pid) == []
    assert sorted(p.name for p in screenshots.glob("*.png")) == [
        "01_asset_groups.png",
        "02_model_column_lineage.png",
        "03_month_of_a_backfill_model.png",
        "04_month_of_a_backfill_sync.png",
        "05_cli_runs.png",
    ]
