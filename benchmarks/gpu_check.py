"""One-GPU check, sized for 9 minutes on one H200: store build, paper and fast training speed, time to accuracy.

    python benchmarks/gpu_check.py [--data PATH] [--out DIR]      # default data: ../shared/cifar10 (lossless)
    python benchmarks/gpu_check.py --data cifar10-jpeg.tar.gz     # the JPEG copy, labelled as such
    python benchmarks/gpu_check.py --tiny --device cpu            # a seconds-long CPU rehearsal (the tests run it)

It prints one final table and writes it as JSON to OUT/gpu_check.json. Every number is measured in
this run. The accuracies are final-epoch test accuracies of the fast recipe (nothing is selected on
the test set); "time to 94%" is the training-plus-evaluation wall time until the first epoch whose
test accuracy reached it, a speed figure, not a reported result.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from budgetnet.data import load_cifar, load_or_build_store
from budgetnet.model import build_model
from budgetnet.presets import resolve_spec
from budgetnet.spec import ResNetSpec, StageSpec
from budgetnet.train.batches import ImageSet, Normalizer, resident
from budgetnet.train.loop import Setup, Trainee, train_one_epoch
from budgetnet.train.recipe import RECIPES
from budgetnet.train.session import RunOptions, new_run, pick_device

SHARED = Path(__file__).resolve().parents[2] / "shared" / "cifar10"
TARGETS = (0.94, 0.9567)  # 94%, and the paper's best (approach-II(a), Table 1)
TINY_SPEC = ResNetSpec((StageSpec(1, 8, 1), StageSpec(1, 16, 2)), stem_width=8)


def data_label(source: dict) -> str:
    """What data the figures were measured on, as the table prints it."""
    kind = "JPEG copy (lossy)" if source.get("lossy") else "official files (lossless)"
    return f"{kind}, {source.get('format')} at {source.get('path')}, checksums {source.get('checksums')}"


def paper_throughput(spec: ResNetSpec, store: ImageSet, normalizer: Normalizer, device: torch.device,
                     steps: int, warmup: int) -> float:
    """Training images/s of the paper recipe (batch 32, offline store, bf16, channels_last), after warm-up."""
    recipe = RECIPES["paper"].replace(precision="bf16", epochs=1)
    torch.manual_seed(0)
    model = build_model(spec).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)

    def run(n_steps: int) -> float:
        n = n_steps * recipe.batch_size  # the store's first rows: shuffled within them, as training would
        data = ImageSet(store.images[:n], store.labels[:n])
        done = train_one_epoch(Trainee(model, model, optimizer), Setup(recipe, data, normalizer, device), 0,
                               show_bar=False)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return done.seen / done.seconds

    run(warmup)  # kernel selection and allocator warm-up are not timed
    return run(steps)


def time_to(history: list[dict], target: float) -> float | None:
    """Cumulative wall seconds until the first epoch whose test accuracy reached `target`, None if never."""
    elapsed = 0.0
    for m in history:
        elapsed += m["seconds"]
        if m["test_acc"] >= target:
            return elapsed
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED), help="CIFAR-10 in any supported form (default ../shared/cifar10)")
    parser.add_argument("--out", default=None, help="folder for the store, the fast run and gpu_check.json")
    parser.add_argument("--device", default=None, help="default: cuda when available")
    parser.add_argument("--arch", default="approach-2a", help="architecture for both recipes")
    parser.add_argument("--fast-epochs", type=int, default=None, help="override the fast recipe's epochs")
    parser.add_argument("--paper-steps", type=int, default=400, help="timed steps of the paper recipe")
    parser.add_argument("--compile", default=None, help="torch.compile mode for the fast run (e.g. max-autotune-no-cudagraphs)")
    parser.add_argument("--tiny", action="store_true", help="CPU rehearsal: 256 images, a tiny net, 2 epochs")
    args = parser.parse_args()

    device = pick_device(args.device)
    out = Path(args.out or tempfile.mkdtemp(prefix="gpu_check-"))
    out.mkdir(parents=True, exist_ok=True)
    subset = 256 if args.tiny else None
    spec = TINY_SPEC if args.tiny else resolve_spec(args.arch)[1]
    fast = RECIPES["fast"].replace(subset=subset, epochs=args.fast_epochs or (2 if args.tiny else None),
                                   batch_size=64 if args.tiny else None, warmup_epochs=0.5 if args.tiny else None)
    started = time.perf_counter()

    t = time.perf_counter()
    data = load_cifar(args.data)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    store = load_or_build_store(data, out_dir=out / "store", seed=0, subset=subset, device=device, progress=False)
    store_s = time.perf_counter() - t
    print(f"store: {len(store.labels):,} samples built in {store_s:.1f}s on {device}", flush=True)

    normalizer = Normalizer(tuple(store.manifest["mean"]), tuple(store.manifest["std"]))
    on_device = resident(ImageSet(store.images, store.labels), device)
    steps = 4 if args.tiny else args.paper_steps
    paper_ips = paper_throughput(spec, on_device, normalizer, device, steps, warmup=2 if args.tiny else 50)
    print(f"paper recipe: {paper_ips:,.0f} images/s", flush=True)
    del on_device

    run = new_run(spec, fast, data, out / "fast-run", options=RunOptions(device=str(device), quiet=True,
                                                                        compile=args.compile))
    history = run.history
    fast_ips = float(np.mean([m["images_per_s"] for m in history[1:] or history]))  # epoch 1 holds warm-up
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "data": data_label(data.source),
        "tiny": args.tiny,
        "arch": "tiny" if args.tiny else args.arch,
        "data_load_s": load_s,
        "store_samples": int(len(store.labels)),
        "store_build_s": store_s,
        "paper_images_per_s": paper_ips,
        "fast_images_per_s": fast_ips,
        "fast_epochs": fast.epochs,
        "fast_time_to": {f"{100 * t:.2f}%": time_to(history, t) for t in TARGETS},
        "fast_total_s": sum(m["seconds"] for m in history),
        "fast_final_test_acc": history[-1]["test_acc"],
        "wall_s": time.perf_counter() - started,
    }
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ("device", result["device"]),
        ("data", result["data"]),
        ("store build", f"{store_s:.1f} s for {result['store_samples']:,} samples"),
        ("paper recipe (batch 32, bf16)", f"{paper_ips:,.0f} train images/s"),
        (f"fast recipe (batch {fast.batch_size}, bf16)", f"{fast_ips:,.0f} train images/s"),
        *[(f"fast: time to {k}", f"{v:.1f} s" if v is not None else f"not reached in {fast.epochs} epochs")
          for k, v in result["fast_time_to"].items()],
        ("fast: total", f"{result['fast_total_s']:.1f} s for {fast.epochs} epochs"),
        ("fast: final test accuracy", f"{100 * result['fast_final_test_acc']:.2f}% (final epoch, flip TTA, EMA)"),
        ("whole check", f"{result['wall_s']:.0f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n" + "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows))
    print(f"\nwritten to {out / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
