"""Training speed of a named recipe against variants of it (other optimiser, low-res epochs, ...), in one run.

Every variant trains the same network from the same initial weights through budgetnet's train_one_epoch,
with the recipe's batch size, augmentation and precision choice, the variants alternating over several
rounds; the best round of each is compared with the recipe's own, as the machine's noise only ever slows a
round down. The first epoch is timed, so a variant with `low_res_epochs=1` trains at its low-res size. Freed
memory is kept for reuse, as `budgetnet train` keeps it on a CPU (`budgetnet.train.heap`).
Ghost BatchNorm, Lookahead and the EMA are left out (they cost the same in every variant). Images are
random uint8 (speed does not depend on them).

    python benchmarks/recipe_speed.py [--arch resnet-cpu-small] [--recipe cpu-small] \\
        --variant optimizer=sgd --variant low_res_epochs=0 --variant optimizer=sgd,low_res_epochs=0
"""

from __future__ import annotations

import argparse
import sys
import typing

import numpy as np
import torch

from budgetnet.cli.recipe_flags import add_recipe_flags, flag_name
from budgetnet.errors import BudgetnetError
from budgetnet.hardware import cpu_flags, cpu_kind, cpu_model
from budgetnet.model import build_model
from budgetnet.presets import resolve_spec
from budgetnet.train.batches import ImageSet
from budgetnet.train.heap import keep_freed_memory
from budgetnet.train.loop import Setup, Trainee, train_one_epoch
from budgetnet.train.optimizer import build_optimizer
from budgetnet.train.precision import choose_precision
from budgetnet.train.recipe import Recipe, RecipeError, flag_fields, get_recipe
from budgetnet.train.session import batch_augmentation
from synthetic import cifar_normalizer, random_images


def fail(message: str) -> typing.NoReturn:
    """A one-line error on stderr and exit code 2, as the budgetnet CLI gives for a bad flag."""
    print(f"recipe_speed: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_variant(text: str, base: Recipe) -> Recipe:
    """`field=value,field=value` applied to `base`, each value read and checked as its `budgetnet train` flag."""
    fields = {f.name: f for f in flag_fields()}
    argv = []
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name not in fields:
            fail(f"unknown recipe field {name!r}")
        flag = flag_name(fields[name])
        if isinstance(getattr(base, name), bool):  # a --flag/--no-flag pair on the command line
            argv.append(flag if value.lower() in ("1", "true", "yes") else "--no-" + flag[2:])
        else:
            argv += [flag, value]
    parser = argparse.ArgumentParser(prog="recipe_speed --variant", exit_on_error=False)
    add_recipe_flags(parser)
    try:
        given = vars(parser.parse_args(argv))
        return base.replace(**{name: given[name] for name in fields})
    except (argparse.ArgumentError, RecipeError) as e:
        fail(f"--variant {text}: {e}")


def train_speed(spec, recipe: Recipe, initial: dict, data: ImageSet) -> float:
    """Training images/s of the first epoch over `data`, from the weights `initial`."""
    model = build_model(spec).to(memory_format=torch.channels_last)
    model.load_state_dict(initial)
    setup = Setup(recipe, data, cifar_normalizer(), torch.device("cpu"), augment=batch_augmentation(recipe))
    done = train_one_epoch(Trainee(model, model, build_optimizer(model, recipe)), setup, 0, show_bar=False)
    return done.seen / done.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet-cpu-small")
    parser.add_argument("--recipe", default="cpu-small", help="the named recipe the variants change")
    parser.add_argument("--variant", action="append", default=[], help="field=value[,field=value...]")
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per round and variant")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every variant, alternating")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    args = parser.parse_args()
    precision, _, why = choose_precision(args.precision, torch.device("cpu"))
    keep_freed_memory()
    try:
        named = get_recipe(args.recipe)  # its first epoch is timed: at its low-res size if it has low-res epochs
        _, spec = resolve_spec(args.arch)
    except BudgetnetError as e:
        fail(str(e))
    base = named.replace(precision=precision, epochs=2, low_res_epochs=min(named.low_res_epochs, 1), ghost_batch=0,
                         lookahead=0, ema_decay=0.0)
    variants = {"recipe": base, **{text: parse_variant(text, base) for text in args.variant}}
    data = ImageSet(*random_images(base.batch_size * args.steps))
    torch.manual_seed(0)
    initial = build_model(spec).state_dict()
    one_batch = ImageSet(data.images, data.labels, rows=np.arange(base.batch_size))
    for recipe in variants.values():  # warm-up: oneDNN's kernel choice and the allocator, per input size
        train_speed(spec, recipe, initial, one_batch)
    best = dict.fromkeys(variants, 0.0)
    for _ in range(args.rounds):
        for name, recipe in variants.items():
            best[name] = max(best[name], train_speed(spec, recipe, initial, data))
    print(f"{args.arch}, {args.recipe} recipe at batch {base.batch_size}, {precision} ({why}); torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; CPU: {cpu_model()}, {cpu_kind(cpu_flags())}")
    print(f"best of {args.rounds} rounds of {args.steps} steps each, without ghost BatchNorm, Lookahead and EMA")
    for name, speed in best.items():
        print(f"{speed:8.1f} training images/s  {best[name] / best['recipe']:.3f}x  {name}")


if __name__ == "__main__":
    main()
