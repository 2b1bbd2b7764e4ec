"""The two-moons explorer end to end, as a person uses it: a real JupyterLab driven by headless Chromium.

Starts JupyterLab on 127.0.0.1 (free port, random token) in a temporary folder holding a one-cell notebook that
shows the explorer, opens it in headless Chromium through Selenium, runs it, then clicks **Train and draw** after
each change of the covariance family and the rank (ending with the rank back on "full") and checks every time
that the figure changed and that no error appeared. The server is stopped by its PID whatever happens.

Needs Chromium and its driver (Debian's `chromium` and `chromium-driver`; installed with apt-get when missing
and running as root, as CI does) and JupyterLab and Selenium (development requirements). Without them the test
is skipped and says why (`pytest -rs` prints the reason). Takes about a minute; every wait is bounded.
"""
import importlib.util, json, os, re, secrets, shutil, signal, socket, subprocess, sys, tempfile, time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APT_PACKAGES = ["chromium", "chromium-driver"]
BUDGET_S = 240  # the whole browser session, from starting the server to the last figure
CLICK_TIMEOUT_S = 90  # one retrain and redraw (about 5 s on two cores)


def _browser_paths():
    "Chromium and chromedriver if both are installed, else None."
    chrome = next(filter(None, map(shutil.which, ["chromium", "chromium-browser", "google-chrome"])), None)
    driver = "/usr/bin/chromedriver" if os.access("/usr/bin/chromedriver", os.X_OK) else shutil.which("chromedriver")
    return (chrome, driver) if chrome and driver else None


def _apt_install(packages):
    "apt-get install, refreshing the package lists and retrying once if the first try fails; returns the log."
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    log = ""
    for prepare in ([], ["apt-get", "update", "-q"]):
        if prepare: log += subprocess.run(prepare, capture_output=True, text=True, env=env, timeout=300).stdout
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        log += r.stdout + r.stderr
        if r.returncode == 0: break
    return log


def ensure_browser():
    "Paths of Chromium and chromedriver, installing Debian's packages where missing (as root); skip if impossible."
    if paths := _browser_paths(): return paths
    if not shutil.which("apt-get"):
        pytest.skip(f"no Chromium/chromedriver and no apt-get to install {APT_PACKAGES}: browser test not run")
    if os.geteuid() != 0:
        pytest.skip(f"no Chromium/chromedriver, and not root to install them: "
                    f"run `sudo apt-get install {' '.join(APT_PACKAGES)}` to run the browser test")
    print(f"installing {APT_PACKAGES} with apt-get...", flush=True)
    try: log = _apt_install(APT_PACKAGES)
    except subprocess.TimeoutExpired as e: log = f"timed out: {e}"
    if paths := _browser_paths(): return paths
    pytest.skip(f"could not install {APT_PACKAGES} with apt-get, browser test not run:\n{log[-2000:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def explorer_module() -> str:
    "The explorer's module: `vnn_nbdev.explorer` (appendix chapter) where it exists, else `vnn_nbdev.viz`."
    return "vnn_nbdev.explorer" if importlib.util.find_spec("vnn_nbdev.explorer") else "vnn_nbdev.viz"


def write_notebook(path: Path, module: str):
    "A notebook with one cell that shows the explorer (short training, so each click takes a few seconds)."
    source = ("import os\n"
              "from pathlib import Path\n"
              f"from {module} import two_moons_explorer\n"
              "Path('kernel.pid').write_text(str(os.getpid()))  # so the test can make sure the kernel is gone\n"
              "two_moons_explorer(epochs=20, num_samples=32)")
    nb = {"nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "cells": [{"cell_type": "code", "id": "explorer", "metadata": {}, "execution_count": None,
                     "outputs": [], "source": source}]}
    path.write_text(json.dumps(nb, indent=1))


def kernel_ready(url: str, token: str, path: str) -> bool:
    "The server has a kernel for the notebook at `path` that is idle and connected to the page."
    with urllib.request.urlopen(f"{url}/api/sessions?token={token}", timeout=5) as r: sessions = json.load(r)
    return any(s["path"] == path and s["kernel"]["execution_state"] == "idle" and s["kernel"]["connections"] > 0
               for s in sessions)


class Deadline:
    "One time budget for the whole session; `wait` polls a condition until it holds or the budget runs out."
    def __init__(self, seconds): self.end = time.monotonic() + seconds

    def wait(self, condition, timeout, what, poll=0.25):
        end = min(self.end, time.monotonic() + timeout)
        while True:
            value = condition()
            if value: return value
            if time.monotonic() > end:
                raise TimeoutError(f"timed out after {timeout:g} s (or the {BUDGET_S} s budget) waiting for {what}")
            time.sleep(poll)


def stop_process_group(proc: subprocess.Popen, grace=15):
    "SIGTERM the process group led by `proc` (the server and what it spawned), then SIGKILL what is left."
    if proc.poll() is None:
        try: os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError: pass
        try: proc.wait(grace)
        except subprocess.TimeoutExpired: pass
    try: os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group, even if the leader has exited
    except ProcessLookupError: pass
    proc.wait(5)


def kill_pid(pidfile: Path):
    "Kill the kernel (own session, so not in the server's group) if it outlived the server."
    try: pid = int(pidfile.read_text())
    except (OSError, ValueError): return
    try: os.kill(pid, signal.SIGKILL)
    except ProcessLookupError: pass


@pytest.fixture
def lab(tmp_path):
    "A JupyterLab server on 127.0.0.1 serving tmp_path: yields (base url, token, folder); stopped by PID after."
    pytest.importorskip("jupyterlab", reason="JupyterLab is a development requirement: pip install -e '.[dev]'")
    port, token = free_port(), secrets.token_hex(16)
    home = tmp_path/"jupyter"  # isolated config, settings, workspaces and runtime files
    (home/"config"/"labconfig").mkdir(parents=True)
    # no "news" toast over the notebook
    (home/"config"/"labconfig"/"page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home/"config"), "JUPYTER_RUNTIME_DIR": str(home/"runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home/"settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home/"workspaces"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
           "--ServerApp.terminals_enabled=False"]
    if os.geteuid() == 0: cmd.append("--allow-root")
    log = (tmp_path/"server.log").open("w")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)  # its own process group, to stop it and its children at once
    url = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited ({proc.returncode}):\n{(tmp_path/'server.log').read_text()[-3000:]}")
        try: return urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).status == 200
        except OSError: return False
    try:
        Deadline(60).wait(up, 60, "JupyterLab to answer")
        yield url, token, tmp_path
    finally:
        stop_process_group(proc)
        kill_pid(tmp_path/"kernel.pid")
        log.close()
        if os.environ.get("VNN_BROWSER_LOG"): print((tmp_path/"server.log").read_text()[-5000:])


@pytest.fixture
def browser():
    "Headless Chromium driven by Selenium; quit after the test."
    chrome, driver_path = ensure_browser()
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="Selenium is a development requirement: pip install -e '.[dev]'")
    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1400", f"--user-data-dir={tempfile.mkdtemp(prefix='vnn-chromium-')}"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    try: yield driver
    finally:
        driver.quit()
        shutil.rmtree(options.arguments[-1].split("=", 1)[1], ignore_errors=True)


ERROR = re.compile(r"\b\w*(Error|Exception|Traceback)\b.*")


class ExplorerPage:
    "The explorer in a JupyterLab notebook, seen through the DOM."
    def __init__(self, driver, deadline):
        from selenium.webdriver.common.by import By
        self.d, self.by, self.deadline = driver, By, deadline

    def kernel_status(self) -> str | None:
        "The notebook's kernel indicator in the toolbar: 'idle', 'busy', 'unknown' (starting), ..."
        found = self.d.find_elements(self.by.CSS_SELECTOR, ".jp-NotebookPanel .jp-Notebook-ExecutionIndicator")
        return found[0].get_attribute("data-status") if found else None

    def run_cell(self):
        "Click into the code cell and press Shift+Enter, as a person runs a cell."
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys
        editor = self.d.find_element(self.by.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell .jp-InputArea-editor")
        ActionChains(self.d).click(editor).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()

    def button(self):
        found = self.d.find_elements(self.by.XPATH, "//button[contains(normalize-space(.), 'Train and draw')]")
        return found[0] if found else None

    def status(self) -> str:
        return self.button().find_element(self.by.XPATH, "following-sibling::*[1]").text.strip()

    def figure(self) -> str | None:
        "The data URI of the explorer's figure (the last image in the widget's output area), or None."
        imgs = self.d.find_elements(self.by.CSS_SELECTOR, ".jp-Notebook .widget-output img")
        return imgs[-1].get_attribute("src") if imgs else None

    def figure_width(self) -> int | None:
        "The decoded width of the figure's image: 0 if it is broken (e.g. PNG bytes not base64-encoded), None while loading."
        img = self.d.find_elements(self.by.CSS_SELECTOR, ".jp-Notebook .widget-output img")[-1]
        return self.d.execute_script("const i = arguments[0]; return i.complete ? i.naturalWidth : null;", img)

    def errors(self) -> list[str]:
        "Error text anywhere in the notebook's outputs (the widget's status and output included) and stderr outputs."
        texts = [e.text for e in self.d.find_elements(self.by.CSS_SELECTOR, ".jp-Notebook .jp-OutputArea")]
        found = [m.group(0) for t in texts for m in ERROR.finditer(t)]
        found += [e.text for e in self.d.find_elements(
            self.by.CSS_SELECTOR, ".jp-Notebook [data-mime-type='application/vnd.jupyter.stderr']")]
        return found

    def dropdown(self, label: str):
        from selenium.webdriver.support.ui import Select
        return Select(self.d.find_element(
            self.by.XPATH, f"//div[contains(@class, 'widget-dropdown')][label[normalize-space(.)='{label}']]//select"))

    def click_and_wait(self, what: str):
        "Click Train and draw; wait until a new figure is shown or an error appears; fail on either problem."
        before = self.figure()
        self.button().click()
        self.deadline.wait(lambda: self.errors() or (self.status() == "done" and self.figure() not in (None, before)),
                           CLICK_TIMEOUT_S, f"a new figure after {what}")
        errors = self.errors()
        assert not errors, f"error output after {what}: {errors}"
        width = self.deadline.wait(lambda: [self.figure_width()] if self.figure_width() is not None else None, 10,
                                   f"the figure after {what} to load")[0]
        assert width > 0, f"the figure after {what} does not render: broken image, src {self.figure()[:60]!r}..."
        assert self.figure() != before, f"the figure did not change after {what}"


def test_explorer_in_jupyterlab(lab, browser):
    url, token, folder = lab
    module = explorer_module()
    write_notebook(folder/"explorer.ipynb", module)
    deadline = Deadline(BUDGET_S)
    page = ExplorerPage(browser, deadline)
    t0 = time.monotonic()
    try:
        browser.get(f"{url}/lab/tree/explorer.ipynb?token={token}")
        # the toolbar says "idle" before a kernel exists: also ask the server for a started, connected, idle kernel
        deadline.wait(lambda: kernel_ready(url, token, "explorer.ipynb") and page.kernel_status() == "idle", 90,
                      "the notebook to open with a started, idle kernel")
        page.run_cell()
        deadline.wait(page.button, 90, f"the explorer to show (imported from {module})")
        assert not page.errors(), f"error output when showing the explorer: {page.errors()}"
        full_label = page.dropdown("rank").first_selected_option.text.strip() if page.dropdown(
            "rank").all_selected_options else ""
        page.click_and_wait("the first click (factorized, full rank)")
        steps = [{"rank": "2", "covariance": "lowrank"}, {"covariance": "factorized"}]
        for changes in steps:
            for label, value in changes.items(): page.dropdown(label).select_by_visible_text(value)
            page.click_and_wait(f"setting {changes}")
        rank = page.dropdown("rank")
        rank.select_by_index(0)  # the entry meant as full rank
        chosen = rank.first_selected_option.text.strip()
        page.click_and_wait(f"setting rank back to its first entry (shown as {chosen!r})")
        assert chosen == "full", f"the rank dropdown's first entry is shown as {chosen!r}, not 'full'"
        assert full_label == "full", f"the rank dropdown starts as {full_label!r}, not 'full' (the default rank)"
        print(f"explorer ({module}) in JupyterLab: 4 figures in {time.monotonic() - t0:.0f} s")
    except BaseException:
        shot = folder/"failure.png"
        try:
            browser.save_screenshot(str(shot))
            keep = Path(tempfile.mkdtemp(prefix="vnn-browser-test-"))
            shutil.copy(shot, keep/shot.name)
            shutil.copy(folder/"server.log", keep/"server.log")
            print(f"screenshot and server log of the failure: {keep}")
        except Exception: pass
        raise
