"""Screenshot of `budgetnet serve` classifying one real CIFAR-10 test image, taken in headless Chromium.

Starts `budgetnet serve MODEL` on a free loopback port, opens the page in the Debian `chromium`
package through `chromedriver` (Selenium; nothing is downloaded), uploads the image, waits until
the prediction is shown and saves a PNG of the page. The image is test image --index of --data
(written to a temporary PNG), or the file given with --image. Needs the `test` extra.

    python benchmarks/serve_screenshot.py RUN_OR_MODEL --data ../shared/cifar10 [--index 0] [--image FILE]
                                          --out docs/serve.png

The helpers (free_port, Server, Page) are also what tests/test_deploy_serve.py drives.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")  # Debian's chromium package
CHROMEDRIVER = Path("/usr/bin/chromedriver")  # Debian's chromium-driver package, the same build
# headless, and nothing that reaches out: no sync, no component or safe-browsing updates, no first-run pages
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,1000")
START_SECONDS = 90  # budgetnet serve imports gradio and loads the model before it listens


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`budgetnet serve` in a subprocess, on a free loopback port; a context manager that stops it."""

    def __init__(self, model: str | Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tempfile.TemporaryFile(mode="w+")
        argv = [sys.executable, "-m", "budgetnet", "serve", str(model), "--port", str(self.port), *extra]
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, text=True,
                                        env={**os.environ, **(env or {})})
        deadline = time.monotonic() + START_SECONDS
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"budgetnet serve did not start:\n{self.output()}")
            time.sleep(0.2)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def output(self) -> str:
        """Everything the server printed so far."""
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        """Stop the server (Ctrl-C, as a user would) and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Page:
    """The served page in headless Chromium: upload files, read the shown top-1 class and errors, screenshot."""

    def __init__(self, url: str, profile: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        self.driver.get(url)
        self.wait_for(lambda: self.find("#upload input[type=file]"), "the upload field")

    def find(self, css: str) -> list:
        """The elements matching the CSS selector `css` now."""
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait_for(self, condition, what: str, seconds: float = 30):
        """The first truthy value of `condition()`, polled; a TimeoutError naming `what` otherwise."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"gave up after {seconds:.0f} s waiting for {what}")

    def upload(self, path: str | Path) -> None:
        """Put `path` into the image field, clearing the image shown before, as a user dropping a file does."""
        for button in self.find("#upload button[aria-label='Remove Image']"):
            button.click()
        self.wait_for(lambda: self.find("#upload input[type=file]"), "the cleared upload field")
        self.find("#upload input[type=file]")[0].send_keys(str(Path(path).resolve()))

    def top1(self) -> str:
        """The top-1 class the page shows now ('' while none)."""
        shown = self.find("#top-classes [data-testid='label-output-value']")
        return shown[0].text.strip() if shown else ""

    def wait_for_top1(self, expected: str) -> str:
        """Wait until the page shows `expected` as top-1 (the previous answer may still be there for a moment)."""
        self.wait_for(lambda: self.top1() == expected, f"top-1 {expected!r} (showing {self.top1()!r})")
        return self.top1()

    def wait_for_error(self) -> str:
        """The text of the error the page shows."""
        return self.wait_for(lambda: " ".join(t.text for t in self.find("[data-testid='toast-body']")).strip(),
                             "an error message")

    def timing(self) -> str:
        """The inference-time line shown."""
        return self.find("#timing textarea")[0].get_attribute("value")

    def screenshot(self, out: str | Path) -> Path:
        """A PNG of the whole page, as wide as the window and as tall as the content."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, max(600, int(height) + 40))
        self.driver.save_screenshot(str(out))
        return Path(out)

    def close(self) -> None:
        """Quit Chromium."""
        self.driver.quit()


def test_image(data: str, index: int, folder: Path) -> tuple[Path, str]:
    """Test image `index` of the dataset at `data`, written as a PNG, and its true class."""
    from PIL import Image

    from budgetnet.data import load_cifar

    dataset = load_cifar(data)
    label = dataset.classes[int(dataset.test_labels[index])]
    path = folder / f"cifar10-test-{index:05d}-{label}.png"
    Image.fromarray(dataset.test_images[index].transpose(1, 2, 0)).save(path)
    return path, label


def predicted_top1(model: str, image: Path) -> str:
    """`budgetnet predict --json`'s top-1 class for `image`, the answer the page must show."""
    import json

    out = subprocess.run([sys.executable, "-m", "budgetnet", "predict", model, str(image), "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["top"][0]["class"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="run directory, .pt checkpoint or .onnx export to serve")
    parser.add_argument("--data", required=True, help="the dataset the test image (and the page's examples) come from")
    parser.add_argument("--index", type=int, default=0, help="which test image (default 0)")
    parser.add_argument("--image", help="a PNG/JPEG file to upload instead of a test image")
    parser.add_argument("--out", required=True, help="where to write the screenshot (PNG)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        image, truth = (Path(args.image), "?") if args.image else test_image(args.data, args.index, folder)
        expected = predicted_top1(args.model, image)
        with Server(args.model, "--data", args.data) as server:
            page = Page(server.url, folder / "profile")
            try:
                page.upload(image)
                page.wait_for_top1(expected)
                out = page.screenshot(args.out)
                print(f"{out}: {image.name} (true class {truth}) shown as {expected}; {page.timing()}")
            finally:
                page.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
