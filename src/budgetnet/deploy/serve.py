"""`budgetnet serve`: a local Gradio page and API that classify one image through predict's code path.

The upload is read by budgetnet.data.images (PNG/JPEG only, to RGB, shorter side to 32, centre
crop), exactly as `budgetnet predict` reads a file, and classified by the same Classifier. The
page shows the top 5 classes, the 32x32 array the model saw, the time taken and the model card's
key facts. The endpoint `/predict` takes one image; its first output is the top-5 gr.Label.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: the page never calls home
import gradio as gr  # noqa: E402

from budgetnet.data.images import read_image  # noqa: E402
from budgetnet.deploy.facts import facts_markdown, model_facts  # noqa: E402
from budgetnet.deploy.predict import Classifier, top_classes  # noqa: E402
from budgetnet.errors import BudgetnetError, DataError  # noqa: E402

LOOPBACK_NAMES = ("localhost", "ip6-localhost")
TOP_K = 5  # classes shown per image
EXAMPLES = 6  # CIFAR-10 test images offered as examples, one per class
# system fonts only: the default theme's web fonts would be fetched from the internet by every visitor
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
CSS = ("#model-input img, #upload img { image-rendering: pixelated; width: 100% !important; "
       "height: 100% !important; object-fit: contain !important; }")  # small images shown big, pixels sharp


def classify_upload(
    model: Classifier, upload: dict[str, Any] | None
) -> tuple[dict[str, float] | None, np.ndarray | None, str]:
    """Top-5 {class: probability}, the (32, 32, 3) uint8 input the model saw, and the timing line.

    `upload` is gr.Image's raw payload: the event skips Gradio's preprocessing, so that the file
    reaches budgetnet's reader as uploaded (gr.Image would open it with Pillow first).
    """
    if upload is None:  # the image was cleared
        return None, None, ""
    path = upload["path"]
    start = time.perf_counter()
    try:
        image = read_image(path)
    except DataError as e:  # shown in the page; the server goes on serving
        raise gr.Error(str(e).replace(str(path), Path(path).name), print_exception=False) from None
    decoded = time.perf_counter()
    top = top_classes(model, image[None], TOP_K)[0]
    done = time.perf_counter()
    timing = (f"{1000 * (done - decoded):.1f} ms forward pass ({model.backend}, batch of 1), "
              f"{1000 * (decoded - start):.1f} ms to decode and resize")
    return dict(top), np.ascontiguousarray(image.transpose(1, 2, 0)), timing


def example_images(data_path: str | None, folder: Path, count: int = EXAMPLES) -> tuple[list[Path], str]:
    """The first test image of each of `count` classes of `data_path`, written as PNGs into `folder`, and a note."""
    from PIL import Image

    from budgetnet.deploy.rundata import describe_source, load_dataset

    if data_path is None:
        return [], "no example images: the model records no dataset; pass --data PATH"
    try:
        dataset = load_dataset(data_path)
    except (BudgetnetError, OSError) as e:
        return [], f"no example images: cannot load {data_path} ({e})"
    files, seen = [], set()
    for index, label in enumerate(dataset.test_labels):
        if label in seen:
            continue
        seen.add(label)
        files.append(folder / f"test-{index:05d}-{dataset.classes[label]}.png")
        Image.fromarray(dataset.test_images[index].transpose(1, 2, 0)).save(files[-1])
        if len(files) == count:
            break
    return files, f"examples: {len(files)} test images of {describe_source(dataset.source)}"


def build_app(model: Classifier, model_path: str | Path, examples: list[Path]) -> gr.Blocks:
    """The page: image in; top-5 label, the model's 32x32 input and timing out; the model's facts below."""
    arch = model.about.get("arch") or "custom"
    model.logits(np.zeros((1, 3, 32, 32), np.uint8))  # the first call pays one-off setup; the page times later ones
    with gr.Blocks(title=f"budgetnet: {arch}") as app:
        gr.Markdown(f"## budgetnet `{arch}`: drop an image to see what the model thinks")
        with gr.Row():
            with gr.Column():
                image = gr.Image(sources=["upload"], label="Image (PNG or JPEG, any size)",
                                 height=256, elem_id="upload")
                if examples:
                    gr.Examples([[str(p)] for p in examples], inputs=image, label="CIFAR-10 test images")
                gr.Markdown("### The model\n\n" + facts_markdown(model_facts(model, model_path)), elem_id="model-facts")
            with gr.Column():
                label = gr.Label(num_top_classes=TOP_K, label=f"Top {TOP_K} classes", elem_id="top-classes")
                seen = gr.Image(label="What the model saw: 32x32, shorter side resized then centre-cropped",
                                format="png", interactive=False, elem_id="model-input", height=192)
                timing = gr.Textbox(label="Inference time, this machine", elem_id="timing", interactive=False)
        image.change(lambda upload: classify_upload(model, upload), inputs=image, outputs=[label, seen, timing],
                     api_name="predict", preprocess=False)
    return app


def launch(app: gr.Blocks, host: str, port: int, examples_dir: Path) -> str:
    """Start the server in the background and return its local URL."""
    _, url, _ = app.queue().launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                                   theme=THEME, css=CSS, allowed_paths=[str(examples_dir)], footer_links=["api"])
    return url


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port_free(host: str, port: int) -> None:
    """Fail in one line before loading anything if `host:port` cannot be listened on."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself will
            probe.bind((host, port))
    except OSError as e:
        reason = e.strerror or str(e)
        raise BudgetnetError(f"cannot listen on {host}:{port} ({reason}); pick another --port or --host") from None


def serve_model(model_path: str | Path, host: str, port: int, data: str | None,
                folder: Path) -> tuple[gr.Blocks, str, str]:
    """Load a run directory, checkpoint or ONNX export and start its page in the background, with example
    test images of `data` (default: the model's recorded dataset) written into `folder`.

    Returns the app (close it to stop), its local URL and a note on the examples.
    """
    from budgetnet.deploy.predict import load_classifier
    from budgetnet.deploy.rundata import run_data_path

    check_port_free(host, port)
    model = load_classifier(model_path)
    examples, note = example_images(run_data_path(model.about.get("data_source") or {}, data), folder)
    app = build_app(model, model_path, examples)
    return app, launch(app, host, port, folder), note
