"""`budgetnet serve`: the page in headless Chromium, the /predict API from gradio_client, and its one-line errors.

The model is really trained by `budgetnet train` (a 1,506-parameter net, 2 epochs on 400 synthetic
PNGs whose colour encodes the class), so its answers are meaningful and differ between classes.
The browser and the server helpers are benchmarks/serve_screenshot.py's, the script that takes
the docs' screenshot.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from deploy_run import TINY_SPEC, private_cache, write_png_dataset  # noqa: F401  (fixture)
from PIL import Image

from budgetnet.cli.main import main
from budgetnet.counts import count_params
from budgetnet.data.images import read_image

pytest.importorskip("gradio", reason="the 'serve' extra is not installed")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from serve_screenshot import CHROMEDRIVER, CHROMIUM, Page, Server, free_port  # noqa: E402

CORRUPT = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40  # a PNG signature, then nothing Pillow can decode


def predict_json(model: Path, *files: Path) -> dict[Path, str]:
    """{file: top-1 class} as `budgetnet predict MODEL FILES --json` prints it."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["predict", str(model), *map(str, files), "--json"]) == 0
    return {Path(row["file"]): row["top"][0]["class"] for row in map(json.loads, printed.getvalue().splitlines())}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A trained tiny run, one test PNG per class with the class `predict --json` gives it, and a running server."""
    root = tmp_path_factory.mktemp("serve")
    env = {"BUDGETNET_CACHE": str(root / "cache"), "GRADIO_TEMP_DIR": str(root / "gradio")}
    write_png_dataset(root / "data", train=400, test=100)
    TINY_SPEC.save(root / "tiny.json")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        assert main(["train", "--arch", str(root / "tiny.json"), "--data", str(root / "data"), "--out",
                     str(root / "run"), "--quiet", "--epochs", "2", "--milestones", "1", "--augment", "none",
                     "--batch-size", "32"]) == 0
    images = {}  # predicted class -> a test PNG the model gives that class, two classes
    for path, top1 in predict_json(root / "run", *sorted((root / "data" / "test").rglob("*.png"))[:40]).items():
        images.setdefault(top1, path)
    images = dict(list(images.items())[:2])
    (root / "corrupt.png").write_bytes(CORRUPT)
    with Server(root / "run", env=env) as server:
        yield {"root": root, "run": root / "run", "images": images, "server": server, "env": env}


def test_page_in_chromium_shows_predict_answer_and_survives_a_corrupt_upload(served: dict, tmp_path: Path) -> None:
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip(f"no {CHROMIUM} or no {CHROMEDRIVER} (Debian's chromium, chromium-driver; .ci/run installs them)")
    (first, a), (second, b) = served["images"].items()
    page = Page(served["server"].url, tmp_path / "profile")
    try:
        page.upload(a)
        assert page.wait_for_top1(first) == first
        assert re.fullmatch(r"\d+\.\d ms forward pass \(pytorch, batch of 1\), \d+\.\d ms to decode and resize",
                            page.timing())
        facts = page.find("#model-facts")[0].text
        metrics = [json.loads(line) for line in (served["run"] / "metrics.jsonl").read_text().splitlines()]
        assert f"{count_params(TINY_SPEC):,}" in facts and f"{100 * metrics[-1]['test_acc']:.2f}%" in facts
        page.upload(served["root"] / "corrupt.png")
        error = page.wait_for_error()
        assert "corrupt.png" in error and "not a readable image" in error
        page.upload(b)
        assert page.wait_for_top1(second) == second  # a different class: this answer is new, not the old one
        shot = page.screenshot(tmp_path / "serve.png")
    finally:
        page.close()
    with Image.open(shot) as image:
        assert image.format == "PNG" and image.width >= 1000
    assert served["server"].process.poll() is None


def test_gradio_client_predict_is_predicts_answer_and_input(served: dict) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(served["server"].url, verbose=False)
    for expected, path in served["images"].items():
        label, seen, timing = client.predict(handle_file(str(path)), api_name="/predict")
        assert label["label"] == expected  # what `budgetnet predict --json` says for this file
        with Image.open(seen) as shown:  # the exact 32x32 array predict's image policy makes of the file
            np.testing.assert_array_equal(np.asarray(shown), read_image(path).transpose(1, 2, 0))
        assert "ms forward pass" in timing
    with pytest.raises(AppError, match="corrupt.png: not a readable image"):
        client.predict(handle_file(str(served["root"] / "corrupt.png")), api_name="/predict")
    again = client.predict(handle_file(str(next(iter(served["images"].values())))), api_name="/predict")[0]
    assert again["label"] == next(iter(served["images"]))


def test_client_probabilities_equal_predict_json(served: dict, capsys: pytest.CaptureFixture) -> None:
    from gradio_client import Client, handle_file

    path = next(iter(served["images"].values()))
    label = Client(served["server"].url, verbose=False).predict(handle_file(str(path)), api_name="/predict")[0]
    capsys.readouterr()
    assert main(["predict", str(served["run"]), str(path), "--json", "--top-k", "5"]) == 0
    expected = json.loads(capsys.readouterr().out)["top"]
    assert [c["label"] for c in label["confidences"]] == [t["class"] for t in expected]
    np.testing.assert_allclose([c["confidence"] for c in label["confidences"]],
                               [t["probability"] for t in expected], atol=1e-6)


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    code = main(["serve", *map(str, argv)])
    return code, capsys.readouterr().err


def test_bad_model_path_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(capsys, tmp_path / "no-such-run", "--port", free_port())
    assert code == 2 and err.count("\n") == 1 and err.startswith("budgetnet: error: ") and "no-such-run" in err
    (tmp_path / "model.onnx").write_bytes(b"not onnx")
    code, err = run_cli(capsys, tmp_path / "model.onnx", "--port", free_port())
    assert code == 2 and err.count("\n") == 1 and "not a readable ONNX model" in err


def test_all_interfaces_warns_and_loopback_does_not(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(capsys, tmp_path / "missing", "--host", "0.0.0.0", "--port", free_port())
    warning, error = err.splitlines()
    assert code == 2 and warning.startswith("budgetnet: warning: listening on 0.0.0.0") and "network" in warning
    assert error.startswith("budgetnet: error: ")
    for host in ("127.0.0.1", "localhost"):
        code, err = run_cli(capsys, tmp_path / "missing", "--host", host, "--port", free_port())
        assert code == 2 and "warning" not in err and err.count("\n") == 1


def test_port_in_use_is_one_line(served: dict, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(capsys, served["run"], "--port", served["server"].port)
    assert code == 2 and err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{served['server'].port}" in err


def test_missing_extra_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now fails as if it were not installed
    monkeypatch.delitem(sys.modules, "budgetnet.deploy.serve", raising=False)
    code, err = run_cli(capsys, tmp_path, "--port", free_port())
    assert code == 2 and err == ("budgetnet: error: this command needs gradio, from the 'serve' extra: "
                                 "pip install 'budgetnet[serve]' (or pip install -e '.[serve]' in a clone)\n")


def test_onnx_exports_serve_through_the_same_path(served: dict, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from gradio_client import Client, handle_file

    from budgetnet.deploy.predict import load_classifier
    from budgetnet.deploy.serve import build_app, launch

    for key, value in served["env"].items():
        monkeypatch.setenv(key, value)
    run = served["run"]
    assert main(["export", str(run), "--format", "onnx"]) == 0
    assert main(["quantize", str(run), "--calib", "64", "--seconds", "0.1"]) == 0
    capsys.readouterr()
    for name in ("model.onnx", "model.int8.onnx"):
        model_path = run / "export" / name
        app = build_app(load_classifier(model_path), model_path, [])
        try:
            url = launch(app, "127.0.0.1", free_port(), tmp_path)
            expected = predict_json(model_path, *served["images"].values())
            for path in served["images"].values():
                label = Client(url, verbose=False).predict(handle_file(str(path)), api_name="/predict")[0]
                assert label["label"] == expected[path]
        finally:
            app.close()


def test_model_facts_are_the_runs_own(served: dict, tmp_path: Path) -> None:
    from budgetnet.counts import count_macs
    from budgetnet.deploy.facts import model_facts
    from budgetnet.deploy.predict import load_classifier

    run = served["run"]
    facts = dict(model_facts(load_classifier(run), run))
    assert facts["Parameters"] == f"{count_params(TINY_SPEC):,}"
    assert facts["MACs per 32x32 image"] == f"{count_macs(TINY_SPEC):,}"
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert facts["Test accuracy"].startswith(f"{100 * last['test_acc']:.2f}% (epoch {last['epoch']}")
    assert facts["Recipe"].startswith("`paper` (epochs 2, batch size 32")
    int8 = run / "export" / "model.int8.onnx"
    if not int8.is_file():
        assert main(["quantize", str(run), "--calib", "64", "--seconds", "0.1"]) == 0
    report = json.loads((run / "export" / "quantize.json").read_text())
    facts = dict(model_facts(load_classifier(int8), int8))
    assert f"{100 * report['int8']['test_acc']:.2f}% vs fp32 {100 * report['fp32']['test_acc']:.2f}%" in \
        facts["Int8 (measured by `budgetnet quantize`)"]
    loose = shutil.copy(int8, tmp_path / "model.int8.onnx")  # outside its run: nothing recorded to show
    facts = dict(model_facts(load_classifier(loose), loose))
    assert facts["Test accuracy"].startswith("not recorded") and facts["Int8"].startswith("accuracy not recorded")
