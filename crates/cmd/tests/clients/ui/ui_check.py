"""Drives Trireme's web UI in headless Chromium (Debian's chromium and chromium-driver)
through WebDriver, for crates/cmd/tests/ui.rs.

Usage:
  ui_check.py live BASE SHOTS_DIR
      Checks the overview's counts and that the page follows the leader's event stream,
      waits (on stdin) for the test to launch a task and sees it RUNNING without reloading,
      opens its page and sees what the task printed on stdout, saves screenshots of every
      view at two sizes, tears the framework down from the UI and sees the task KILLED.
  ui_check.py follower BASE LEADER
      Checks that a follower's UI names LEADER; then waits (on stdin) for "leader NEW"
      and sees the overview show NEW and the page follow NEW's event stream, without
      reloading.

Talks to the test with lines: it prints "step <name>" when it needs the test to act and
reads one line back. Exits non-zero with a message on the first failed check. JavaScript
errors in the browser's console fail the run.
"""

import json
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

DEADLINE_S = 30.0
SIZES = {"desktop": (1440, 900), "phone": (390, 844)}
VIEWS = ["overview", "agents", "frameworks", "tasks", "roles", "maintenance"]


def fail(message):
    print(f"FAIL {message}", flush=True)
    sys.exit(1)


def browser():
    options = Options()
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1440,900"]:
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def poll(what, check, deadline=DEADLINE_S):
    """Calls check() until it returns something truthy; fails after the deadline."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        try:
            got = check()
            if got:
                return got
        except WebDriverException as e:
            last = e.msg
        time.sleep(0.1)
    fail(f"{what} within {deadline}s (last error: {last})")


def text_of(driver, css):
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0].text.strip() if found else None


def step(name):
    print(f"step {name}", flush=True)
    answer = sys.stdin.readline().strip()
    if not answer:
        fail(f"no answer from the test at step {name}")
    return answer


class Console:
    """Collects the browser's console; JavaScript errors fail the run."""

    def __init__(self, driver):
        self.driver = driver
        self.entries = []

    def collect(self, allow_network=False):
        for entry in self.driver.get_log("browser"):
            self.entries.append(entry)
            if entry["level"] != "SEVERE":
                continue
            network = "Failed to load resource" in entry["message"]
            if not (allow_network and network):
                fail(f"console error: {entry['message']}")


def go(driver, hash_path):
    """Navigates inside the page (the hash router), never reloading it."""
    driver.execute_script("location.hash = arguments[0]", hash_path)


def screenshots(driver, shots):
    for size, (w, h) in SIZES.items():
        driver.set_window_size(w, h)
        for view in VIEWS:
            go(driver, "#/" if view == "overview" else f"#/{view}")
            poll(f"the {view} view", lambda: text_of(driver, "main h1"))
            driver.save_screenshot(f"{shots}/{view}-{size}.png")
    driver.set_window_size(*SIZES["desktop"])


def task_state(driver, task):
    rows = driver.find_elements(By.CSS_SELECTOR, "#tasks tbody tr")
    for row in rows:
        if row.find_elements(By.LINK_TEXT, task):
            badge = row.find_elements(By.CSS_SELECTOR, "[data-state]")
            return badge[0].get_attribute("data-state") if badge else None
    return None


def live(base, shots):
    driver = browser()
    console = Console(driver)
    try:
        driver.get(f"{base}/")
        poll("one active agent on the overview",
             lambda: text_of(driver, "[data-count=agents-active]") == "1")
        poll("the leader's event stream", lambda: "live" in (text_of(driver, "#connection") or ""))
        go(driver, "#/tasks")
        poll("the tasks view", lambda: driver.find_elements(By.CSS_SELECTOR, "#tasks"))
        task = step("launch")
        poll(f"{task} RUNNING without a reload", lambda: task_state(driver, task) == "TASK_RUNNING")
        driver.find_element(By.LINK_TEXT, task).click()
        poll("the task page's status history",
             lambda: driver.find_elements(By.CSS_SELECTOR, "#statuses [data-state=TASK_RUNNING]"))
        poll("the task's stdout on its page",
             lambda: "ui-task-says-hello" in (text_of(driver, "#log") or ""))
        framework_link = driver.find_element(By.CSS_SELECTOR, "a[href^='#/frameworks/']")
        framework_hash = framework_link.get_attribute("href").split("#", 1)[1]
        task_hash = driver.execute_script("return location.hash")
        screenshots(driver, shots)
        go(driver, framework_hash)
        poll("the tear-down button",
             lambda: driver.find_elements(By.CSS_SELECTOR, "button[data-action=teardown]"))[0].click()
        poll("the confirmation dialog", lambda: driver.find_element(By.ID, "confirm").is_displayed())
        driver.find_element(By.ID, "confirm-ok").click()
        go(driver, task_hash)
        poll(f"{task} KILLED after the tear-down",
             lambda: driver.find_elements(By.CSS_SELECTOR, "dl.props [data-state=TASK_KILLED]"))
        console.collect()
    finally:
        driver.quit()
    # Only once the browser is gone: the test stops this script when it reads "ok".
    print("ok", json.dumps({"console_entries": len(console.entries)}), flush=True)


def follower(base, leader):
    driver = browser()
    console = Console(driver)
    try:
        driver.get(f"{base}/")
        poll(f"the follower's banner naming {leader}",
             lambda: text_of(driver, "#leader-link") == leader)
        poll(f"the overview naming {leader}", lambda: text_of(driver, "#leader") == leader)
        console.collect()
        answer = step("kill-leader")
        new = answer.removeprefix("leader ")
        poll(f"the overview naming the new leader {new}",
             lambda: text_of(driver, "#leader") == new, deadline=60.0)
        poll("the event stream from the new leader",
             lambda: "live" in (text_of(driver, "#connection") or ""), deadline=60.0)
        # Requests to the killed leader fail while the masters elect a new one: those
        # network errors are expected; any JavaScript error is not.
        console.collect(allow_network=True)
    finally:
        driver.quit()
    print("ok", flush=True)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("live", "follower"):
        fail(f"usage: {sys.argv[0]} live BASE SHOTS_DIR | follower BASE LEADER")
    {"live": live, "follower": follower}[sys.argv[1]](sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    main()
