"""CPU inference throughput: fp32 eager PyTorch, fp32 ONNX Runtime and int8 ONNX Runtime, in one run.

The three backends run the same model (approach-2a by default) on the same normalised inputs
at batch 1 and batch 256. Rounds are interleaved (every backend once per round, in turn) so
a busy machine slows them alike; the median round is reported. Weights are the He
initialisation with seed 0 unless --run names a trained run: images/s does not depend on the
weights. The int8 model is calibrated on training images from --data (random images if none,
which changes its ranges but not its speed).

    python benchmarks/inference.py [--arch approach-2a] [--run RUN_DIR] [--data PATH] [--rounds 3] [--seconds 2]
                                   [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from budgetnet.checkpoint import inference_model_from_checkpoint, load_checkpoint
from budgetnet.deploy.onnx_export import export_onnx, onnx_logits, open_onnx
from budgetnet.deploy.quantize import calibration_sample, quantize_onnx
from budgetnet.deploy.speed import images_per_second
from budgetnet.hardware import environment
from budgetnet.model import build_model
from budgetnet.presets import resolve_spec
from budgetnet.runrecord import Checkpoint, DataInfo
from synthetic import MEAN, STD, random_images

BATCHES = (1, 256)


def model_state(arch: str, run: str | None) -> Checkpoint:
    """A checkpoint: the trained run's, or `arch` with seed-0 He-initialised weights."""
    if run:
        return load_checkpoint(run)
    torch.manual_seed(0)
    name, spec = resolve_spec(arch)
    classes = tuple(f"class{i}" for i in range(spec.num_classes))
    return Checkpoint(spec, build_model(spec).state_dict(), arch=name,
                      data=DataInfo(classes, MEAN, STD, source={}))


def images(data: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(calibration images from the training split, timing images from the test split, description)."""
    if data:
        from budgetnet.data import load_cifar

        d = load_cifar(data)
        return calibration_sample(d.train_images, 256), d.test_images[:256], f"CIFAR-10 from {data}"
    x, _ = random_images(512)
    return x[:256], x[256:], "random uint8 images"


def main() -> None:
    """Export, quantize, time the three backends and print a markdown table (or JSON)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="approach-2a")
    p.add_argument("--run", help="a trained run directory (default: untrained weights; speed does not depend on them)")
    p.add_argument("--data", help="CIFAR-10 for calibration and timing inputs (default: random images)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=2.0, help="timing length per measurement")
    p.add_argument("--threads", type=int, default=1, help="threads for every backend (default 1: stable when shared)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    state = model_state(args.arch, args.run)
    calib, test, described = images(args.data)
    inputs = np.ascontiguousarray(test)  # every backend takes uint8 pixels and normalises them itself
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path, int8_path = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        export_onnx(state, fp32_path, "benchmark")
        quantize_onnx(fp32_path, int8_path, calib)
        sizes = {"fp32 ONNX": fp32_path.stat().st_size, "int8 ONNX": int8_path.stat().st_size}
        model = inference_model_from_checkpoint(state)
        fp32_session, int8_session = open_onnx(fp32_path, args.threads)[0], open_onnx(int8_path, args.threads)[0]

        def eager(x: np.ndarray) -> None:
            with torch.no_grad():
                model(torch.from_numpy(x))

        backends = {"fp32 eager PyTorch": eager, "fp32 ONNX Runtime": lambda x: onnx_logits(fp32_session, x),
                    "int8 ONNX Runtime": lambda x: onnx_logits(int8_session, x)}
        rounds: dict[str, dict[int, list[float]]] = {name: {b: [] for b in BATCHES} for name in backends}
        for _ in range(args.rounds):
            for b in BATCHES:
                for name, run in backends.items():
                    rounds[name][b].append(images_per_second(run, inputs, b, args.seconds))
    speed = {name: {b: statistics.median(v) for b, v in per.items()} for name, per in rounds.items()}
    env = environment(torch.device("cpu"))
    weights = f"trained run {args.run}" if args.run else "untrained (He init, seed 0)"
    result = {"arch": state.arch, "weights": weights,
              "inputs": described, "rounds": args.rounds, "seconds": args.seconds, "images_per_s": speed,
              "all_rounds": rounds, "bytes": sizes, "cpu": env["cpu"], "cpu_count": env["cpu_count"],
              "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
              "onnxruntime": onnxruntime.__version__, "python": platform.python_version()}
    print(json.dumps(result, indent=2) if args.json else table(result))


def table(r: dict) -> str:
    """The result as the markdown block that goes into docs/benchmarks.md."""
    base = r["images_per_s"]["fp32 eager PyTorch"]
    ort32 = r["images_per_s"]["fp32 ONNX Runtime"]
    lines = [f"{r['arch']}, {r['weights']}, inputs: {r['inputs']}; median of {r['rounds']} interleaved rounds of "
             f"{r['seconds']:g} s per measurement.",
             f"CPU: {r['cpu']} ({r['cpu_count']} logical cores; {r['torch_threads']} thread(s) for PyTorch and "
             f"onnxruntime alike); python {r['python']}, torch {r['torch']}, onnxruntime {r['onnxruntime']}.", "",
             "| backend | images/s, batch 1 | images/s, batch 256 | vs eager (1 / 256) | vs fp32 ORT (1 / 256) |",
             "|---|---|---|---|---|"]
    for name, s in r["images_per_s"].items():
        lines.append(f"| {name} | {s[1]:,.0f} | {s[256]:,.0f} | {s[1] / base[1]:.2f}x / {s[256] / base[256]:.2f}x | "
                     f"{s[1] / ort32[1]:.2f}x / {s[256] / ort32[256]:.2f}x |")
    b = r["bytes"]
    lines += ["", f"File size: fp32 ONNX {b['fp32 ONNX']:,} bytes, int8 ONNX {b['int8 ONNX']:,} bytes "
              f"({b['fp32 ONNX'] / b['int8 ONNX']:.2f}x smaller)."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
