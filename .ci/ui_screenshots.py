"""The README's MLflow UI walk-through, checked in a real headless Chromium: a tiny real search, a real `mlflow ui` on
127.0.0.1, and screenshots of what a newcomer sees at each step (the runs table on first open, a hurdle run told
apart from a trained one, the parent run's description).

    apt-get install -y chromium chromium-driver && pip install -e ".[ui]"
    python .ci/ui_screenshots.py --out mlruns/ui-screenshots

Not part of the test suite (CI's clean machine may have no Chromium); the pieces that need no browser are tested in
tests/gp_backprop/tracking/test_ui.py. Exit 0 when every step showed what the README says; 1 with the step that did
not; 2 when Chromium, its driver or selenium is missing.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1600,1000"]
SEARCH = ["--max-evals", "8", "--workers", "2", "--init", "seeds:backprop,fa,dfa", "--no-progress"]
WAIT = 60.0   # seconds a page may take to show what we look for (2 busy cores)


class StepFailed(Exception):
    """A step of the walk-through did not show what the README says it shows."""


def tiny_search(folder: Path) -> tuple[Path, str]:
    """Run a tiny real search in ``folder`` (the README's first command with 8 candidates, started from the seeds so
    that some train in full and some stop at the hurdle); its store and the UI address its summary printed."""
    out = subprocess.run([sys.executable, "-m", "gp_backprop.evolve", *SEARCH], cwd=folder, text=True,
                         capture_output=True, timeout=600)
    if out.returncode != 0:
        raise StepFailed(f"the tiny search exited {out.returncode}: {out.stderr.strip()[-300:]}")
    m = re.search(r"then open http://127\.0\.0\.1:5000/(\S+)", out.stdout)
    if m is None:
        raise StepFailed("the search's summary printed no address to open")
    return folder / "mlruns" / "mlflow.db", m.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ui(db: Path, port: int, log: Path, timeout: float) -> tuple[subprocess.Popen, float]:
    """`mlflow ui` on the store, and the seconds it took to answer its first page (tens of seconds on 2 busy
    cores: it starts several server processes, each importing MLflow)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{db}",
                             "--host", "127.0.0.1", "--port", str(port)], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                if r.status == 200:
                    return proc, time.monotonic() - t0
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() - t0 > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            raise StepFailed(f"mlflow ui did not answer in {timeout:.0f} s: {log.read_text()[-300:]}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    """End the server and every process it started (its own session: uvicorn and MLflow's job consumers)."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)   # workers that outlived their parent
    except ProcessLookupError:
        pass
    proc.wait()


def browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or ""
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        opts.add_argument(flag)
    return webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver") or ""))


def shown(driver, xpath: str, what: str):
    """The first element at ``xpath`` once it is on the page, or StepFailed naming ``what`` was missing."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT).until(EC.visibility_of_element_located((By.XPATH, xpath)))
    except TimeoutException:
        raise StepFailed(f"{what} not shown within {WAIT:.0f} s at {driver.current_url}") from None


def text(s: str) -> str:
    return f"//*[normalize-space(text())={s!r}]"


def first_open(driver, base: str, address: str, experiment: str, out: Path) -> str:
    """Step 1: the address the search printed, in a browser that never saw MLflow, opens on the runs table."""
    driver.get(f"{base}/{address}")
    shown(driver, text(f"search {experiment}"), f"the parent run 'search {experiment}' in the runs table")
    if "/runs" not in driver.current_url or "overview" in driver.current_url:
        raise StepFailed(f"the experiment opened on {driver.current_url}, not its runs table")
    time.sleep(1)                                                               # let the table's columns settle
    driver.save_screenshot(str(out / "1-runs-table.png"))
    return f"1-runs-table.png: the printed address opens the runs table ({driver.current_url.split('&')[0]})"


def from_home(driver, base: str, experiment: str, out: Path) -> str:
    """Step 2: MLflow's home page, the "Model training" switch (remembered by the browser), Experiments, the search's
    experiment: its runs table."""
    driver.get(f"{base}/")
    shown(driver, text("Model training"), "the GenAI / Model training switch").click()
    shown(driver, "//nav//a[normalize-space(.)='Experiments'] | //a[normalize-space(.)='Experiments']",
          "the Experiments link").click()
    shown(driver, f"//a[normalize-space(.)={experiment!r}]", f"the experiment {experiment!r} in the list").click()
    shown(driver, text(f"search {experiment}"), f"the parent run 'search {experiment}' in the runs table")
    if "/runs" not in driver.current_url or "overview" in driver.current_url:
        raise StepFailed(f"the experiment opened on {driver.current_url}, not its runs table")
    for close in driver.find_elements("xpath", "//button[@data-component-id='mlflow.assistant.chat_panel.close']"):
        close.click()                                                           # the Assistant panel: room for columns
    time.sleep(1)
    driver.save_screenshot(str(out / "2-runs-table-from-home.png"))
    return "2-runs-table-from-home.png: Model training, Experiments, the experiment: its runs table"


def child_runs(driver, experiment: str, out: Path) -> str:
    """Step 3: the parent's + shows one run per candidate; the stopped ones carry their mark in the name."""
    parent = shown(driver, text(f"search {experiment}"), "the parent run")
    row = parent.find_element("xpath", "./ancestor::*[@role='row'][1]")
    row.find_element("xpath", ".//button[contains(@data-component-id, 'runnamecellrenderer')]").click()
    hurdle = shown(driver, "//a//*[contains(text(), '[hurdle@')]", "a child run named with its [hurdle@N] mark")
    trained = shown(driver, "//a//*[starts-with(text(), '#') and not(contains(text(), '['))]",
                    "a child run that trained in full (no mark)")
    time.sleep(1)
    driver.save_screenshot(str(out / "3-child-runs.png"))
    return f"3-child-runs.png: {hurdle.text!r} next to {trained.text!r}"


def description(driver, experiment: str, out: Path) -> str:
    """Step 4: the parent run's page: the best and reference runs linked, a table with each rule once."""
    shown(driver, text(f"search {experiment}"), "the parent run").click()
    best = shown(driver, "//p[starts-with(normalize-space(.), 'Best run:')]/a", "the description's best-run link")
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", best)
    for more in driver.find_elements("xpath", "//*[normalize-space(text())='Show more']"):
        more.click()
    ref = shown(driver, "//p[starts-with(normalize-space(.), 'Reference run:')]/a", "the reference-run link")
    cells = driver.find_elements("xpath", "//*[@data-testid='note-editor-preview-content']//tr/td[2]")
    names = [c.get_attribute("textContent") for c in cells]
    if not names or len(names) != len(set(names)):
        raise StepFailed(f"the description's table does not list each rule once: {names}")
    if "workflowType=genai" in driver.current_url:
        raise StepFailed(f"the run page switched MLflow to GenAI: {driver.current_url}")
    time.sleep(1)
    driver.save_screenshot(str(out / "4-parent-description.png"))
    return (f"4-parent-description.png: best run {best.text!r}, reference run {ref.text!r}, a table of {len(names)} "
            "rules, each once")


def walk(driver, base: str, address: str, experiment: str, out: Path) -> list[str]:
    """The README's steps, one screenshot each; what each showed."""
    return [first_open(driver, base, address, experiment, out), from_home(driver, base, experiment, out),
            child_runs(driver, experiment, out), description(driver, experiment, out)]


def check(out: Path, ready_timeout: float) -> list[str]:
    """A tiny search, `mlflow ui` on it, and the walk-through in a new Chromium profile; what each step showed."""
    from selenium.common.exceptions import WebDriverException

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db, address = tiny_search(folder)
        port = free_port()
        proc, ready = start_ui(db, port, folder / "ui.log", ready_timeout)
        try:
            driver = browser(folder / "profile")
            try:
                return [f"mlflow ui answered its first page after {ready:.1f} s",
                        *walk(driver, f"http://127.0.0.1:{port}", address, "mnist1d", out)]
            except (StepFailed, WebDriverException) as exc:
                driver.save_screenshot(str(out / "failed-step.png"))
                raise StepFailed(f"{exc} (see {out / 'failed-step.png'})".splitlines()[0]) from None
            finally:
                driver.quit()
        finally:
            stop(proc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ui_screenshots", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("mlruns/ui-screenshots"), help="folder for the PNGs")
    ap.add_argument("--ready-timeout", type=float, default=180.0, help="seconds mlflow ui may take to answer")
    args = ap.parse_args(argv)
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        print(f"ui_screenshots: error: {' and '.join(missing)} not found; install Debian's packages: apt-get install "
              "-y chromium chromium-driver", file=sys.stderr)
        return 2
    try:
        import selenium  # noqa: F401
    except ImportError:
        print("ui_screenshots: error: selenium is not installed; pip install -e \".[ui]\"", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        for line in check(args.out, args.ready_timeout):
            print(line)
    except StepFailed as exc:
        print(f"ui_screenshots: {exc}", file=sys.stderr)
        return 1
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
