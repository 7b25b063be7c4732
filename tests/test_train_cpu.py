"""The cpu recipe, scaled down: precision chosen by the CPU, linear schedule, shift augmentation, whitening."""

from __future__ import annotations

import json
import platform

import pytest
import torch

from budgetnet.checkpoint import load_checkpoint
from budgetnet.data.augment import SHIFT, alternating_flips, cutout, online_augment, online_augmentation, shift_augment
from budgetnet.hardware import cpu_flags, cpu_kind
from budgetnet.model import build_model
from budgetnet.spec import ResNetSpec, StageSpec
from budgetnet.train.precision import choose_precision
from budgetnet.train.recipe import AUGMENT_MODES, BATCH_AUGMENT_MODES, RECIPES, Recipe, RecipeError
from budgetnet.train.schedule import lr_at
from budgetnet.train.session import RunOptions, new_run
from test_train_fast import assert_mid_epoch_resume_is_bit_identical
from train_fixtures import fake_cifar

QUIET = RunOptions(quiet=True)
CPU = torch.device("cpu")
# the cpu recipe's network shape in miniature: whitening stem, pooling stages
TINY_CPU_SPEC = ResNetSpec((StageSpec(1, 8, 2, "pool"), StageSpec(1, 16, 2, "pool")), stem="whiten",
                           stem_width=24, stem_kernel=2)


@pytest.mark.parametrize("flags, expected", [
    ({"avx2", "amx_bf16", "avx512_bf16"}, "bf16"),  # Intel Xeon with AMX
    ({"avx2", "avx512f", "avx512_bf16"}, "bf16"),  # AVX-512 BF16 without AMX
    ({"avx2", "amx_bf16"}, "bf16"),
    ({"avx2", "fma"}, "fp32"),  # AMD Zen 3: AVX2 only, bf16 is emulated
    (set(), "fp32"),  # flags unreadable
])
def test_auto_precision_follows_the_cpu_flags(flags, expected):
    precision, warning, why = choose_precision("auto", CPU, frozenset(flags))
    assert precision == expected and warning is None and why.startswith("auto: this CPU has")


def test_explicit_bf16_on_a_cpu_without_it_runs_with_a_warning():
    precision, warning, _ = choose_precision("bf16", CPU, frozenset({"avx2"}))
    assert precision == "bf16" and "slower than fp32" in warning
    assert choose_precision("bf16", CPU, frozenset({"amx_bf16"}))[1] is None
    assert choose_precision("fp32", CPU, frozenset({"amx_bf16"}))[:2] == ("fp32", None)


@pytest.mark.parametrize("supported, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_cuda_asks_the_gpu(supported, expected):
    assert choose_precision("auto", torch.device("cuda"), frozenset(), cuda_bf16=supported)[0] == expected


@pytest.mark.parametrize("recipe, arch_given, precision, flags, switched", [
    ("cpu", False, "auto", {"avx2", "fma"}, True),  # AMD Zen 3: resnet-cpu would train in fp32 for hours
    ("cpu", False, "fp32", {"avx2"}, True),
    ("cpu", False, "auto", {"avx2", "avx512_bf16"}, False),  # native bf16: the recipe's own network fits
    ("cpu", False, "bf16", {"avx2"}, False),  # asked for bf16 anyway (and warned about it)
    ("cpu", True, "auto", {"avx2"}, False),  # the user chose the network
    ("cpu-small", False, "auto", {"avx2"}, False),
    ("paper", False, "auto", {"avx2"}, False),
])
def test_the_cpu_recipe_trains_cpu_small_on_cpus_without_native_bf16(recipe, arch_given, precision, flags, switched):
    from budgetnet.cli.train import cpu_small_instead

    why = cpu_small_instead(recipe, arch_given, precision, "cpu", frozenset(flags))
    assert (why is not None) == switched
    assert why is None or "trains the cpu-small recipe" in why


def test_cpu_small_is_the_command_it_was_tuned_as():
    from budgetnet.cli.main import build_parser
    from budgetnet.cli.recipe_flags import resolve_recipe

    # the held-out run that chose it: --recipe cpu-small --optimizer muon --muon-lr 0.05 --epochs 14 --low-res-epochs 7
    # --eval-every 7, when cpu-small was --recipe cpu --epochs 13 --weight-decay 1.5e-3 --low-res-epochs 6
    # --low-res-size 24 --eval-every 7; its test passes have since taken the flip pair alone (--tta-shift 0),
    # which does not change what it trains
    args = build_parser().parse_args(["train", "--recipe", "cpu", "--epochs", "14", "--weight-decay", "1.5e-3",
                                      "--optimizer", "muon", "--muon-lr", "0.05", "--low-res-epochs", "7",
                                      "--low-res-size", "24", "--eval-every", "7", "--tta-shift", "0"])
    assert resolve_recipe(args) == RECIPES["cpu-small"].replace(name="cpu")


def test_cpu_flags_and_kind_read_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 amx_bf16\n")
    flags = cpu_flags(info)
    assert {"avx2", "amx_bf16"} <= flags and cpu_kind(flags) == "native bf16 (amx_bf16)"
    assert cpu_flags(tmp_path / "missing") == frozenset() and "no native bf16" in cpu_kind(frozenset())


def test_linear_schedule_warms_up_then_falls_to_zero_in_a_line():
    r = RECIPES["cpu"].replace(epochs=10, warmup_epochs=2.0)
    steps = 100
    assert lr_at(r, 1, 99, steps) == pytest.approx(r.lr)  # the end of warm-up is the peak
    assert lr_at(r, 6, 0, steps) == pytest.approx(r.lr / 2)  # half way down
    assert lr_at(r, 8, 0, steps) == pytest.approx(r.lr / 4)
    lrs = [lr_at(r, e, s, steps) for e in range(2, 10) for s in range(steps)]
    diffs = [a - b for a, b in zip(lrs, lrs[1:])]
    assert max(diffs) == pytest.approx(min(diffs))  # a straight line
    assert 0 < lrs[-1] < r.lr / 500


def test_alternating_flips_show_every_image_both_ways_in_two_epochs():
    index = torch.arange(10_000)
    first, second = alternating_flips(index, 0), alternating_flips(index, 1)
    assert torch.equal(first, ~second) and torch.equal(first, alternating_flips(index, 2))
    assert 0.45 < first.float().mean() < 0.55  # balanced, not all one way


@pytest.mark.parametrize("shift", [SHIFT, 4])
def test_shift_augment_is_a_reflected_translation_of_the_mirrored_image(shift):
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    index = torch.arange(100, 164)
    out = shift_augment(images, torch.Generator().manual_seed(0), index, epoch=3, shift=shift)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    assert torch.equal(out, shift_augment(images, torch.Generator().manual_seed(0), index, epoch=3, shift=shift))
    flips = alternating_flips(index, 3)
    padded = torch.nn.functional.pad(images.float(), (shift,) * 4, mode="reflect").to(torch.uint8)
    used = set()
    for i in range(len(images)):
        source = padded[i].flip(2) if flips[i] else padded[i]
        found = [(y, x) for y in range(2 * shift + 1) for x in range(2 * shift + 1)
                 if torch.equal(out[i], source[:, y:y + 32, x:x + 32])]
        assert found, i
        used.update(found)
    assert max(max(offset) for offset in used) == 2 * shift  # the whole range is used


def test_cutout_sets_one_clipped_square_per_image_to_the_batch_mean_colour():
    # pixels of 0 or 255 (0 or 200 in channel 1): no pixel equals a channel's mean, about 128 (100)
    images = torch.randint(0, 2, (256, 3, 32, 32), dtype=torch.uint8) * torch.tensor([255, 200, 255],
                                                                                    dtype=torch.uint8).view(3, 1, 1)
    out = cutout(images, torch.Generator().manual_seed(1), size=8)
    mean = images.float().mean(dim=(0, 2, 3)).round()
    changed = (out != images).any(1)  # (B, 32, 32)
    sizes = changed.sum(dim=(1, 2))
    assert sizes.max() == 64 and (sizes < 64).any() and (sizes >= 16).all()  # 8x8, clipped at most to 4x4
    for i in range(len(images)):
        rows, cols = changed[i].nonzero(as_tuple=True)
        box = changed[i, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all() and box.sum() == sizes[i]  # one solid rectangle
        assert torch.equal(out[i][:, changed[i]].float(), mean.view(3, 1).expand(3, int(sizes[i])))
    assert torch.equal(out[~changed[:, None].expand_as(out)], images[~changed[:, None].expand_as(out)])


def test_online_augmentation_without_cutout_draws_what_it_drew_before():
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    index = torch.arange(32)

    def run(augment):
        return augment(images, torch.Generator().manual_seed(5), index, 2)

    assert torch.equal(run(online_augmentation("shift")), run(shift_augment))
    assert torch.equal(run(online_augmentation("online")), run(online_augment))
    per_batch = [mode for mode in AUGMENT_MODES if online_augmentation(mode) is not None]
    assert per_batch == list(BATCH_AUGMENT_MODES)  # the recipe's list (which cutout needs) names exactly these
    with_cutout = run(online_augmentation("shift", cutout_size=8))
    assert not torch.equal(with_cutout, run(shift_augment))
    assert ((with_cutout != run(shift_augment)).any(1).sum(dim=(1, 2)) <= 64).all()


@pytest.mark.parametrize("changes, message", [
    ({"shift": 4}, "needs --augment shift"),
    ({"augment": "shift", "shift": 17}, "shift must be 0-16"),
    ({"cutout": 8}, "cutout needs --augment online or shift"),
    ({"augment": "online", "cutout": 33}, "cutout must be 0-32"),
])
def test_shift_and_cutout_values_are_checked(changes, message):
    with pytest.raises(RecipeError, match=message):
        Recipe(**changes)
    assert Recipe().shift == SHIFT  # the recipe's default is the augmentation's


def test_whitening_stem_whitens_training_patches():
    spec = TINY_CPU_SPEC
    model = build_model(spec)
    images = torch.randn(200, 3, 32, 32) @ torch.randn(32, 32) * 0.3 + 0.1  # correlated pixels
    model.fit_whitening(images)
    weight = model.stem.conv.weight
    assert not weight.requires_grad
    out = torch.nn.functional.conv2d(images.double(), weight[:12].double())
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12)
    covariance = torch.cov(flat.T)
    assert torch.allclose(covariance, torch.eye(12, dtype=torch.float64), atol=0.05)  # up to the eps
    assert torch.equal(weight[12:], -weight[:12])


def tiny_cpu(**changes):
    return RECIPES["cpu"].replace(epochs=3, batch_size=16, warmup_epochs=1.0, **changes)


def test_cpu_recipe_trains_a_whitened_pooling_net_and_records_its_precision(tmp_path):
    data = fake_cifar(n_train=96, n_test=30)
    outcome = new_run(TINY_CPU_SPEC, tiny_cpu(), data, tmp_path / "run", options=QUIET)
    assert [m["epoch"] for m in outcome.history] == [1, 2, 3]
    last = outcome.history[-1]
    assert 0 <= last["test_acc_single_view"] <= 1 and 0 <= last["test_acc"] <= 1  # flip TTA and one view
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    recipe = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert env["precision"]["chosen"] == recipe["precision"] in ("fp32", "bf16")  # auto is resolved and recorded
    assert env["precision"]["why"].startswith("auto:") and "cpu_kind" in env
    assert env["keep_freed_memory"] is (platform.libc_ver()[0] == "glibc")  # see test_train_heap.py
    state = load_checkpoint(tmp_path / "run")
    stem = state.model["stem.conv.weight"]
    assert stem.abs().sum() > 0  # fitted from the training images (a fresh build holds zeros), then kept frozen


def test_cpu_recipe_resume_mid_epoch_is_bit_identical(tmp_path):
    # alternating flips depend on the epoch and the row, shifts on the saved generator state
    assert_mid_epoch_resume_is_bit_identical(TINY_CPU_SPEC, tiny_cpu(), fake_cifar(n_train=96, n_test=30), tmp_path,
                                             stop_after=8)


def test_cpu_recipe_with_wider_shifts_and_cutout_resumes_mid_epoch_bit_identically(tmp_path):
    assert_mid_epoch_resume_is_bit_identical(TINY_CPU_SPEC, tiny_cpu(shift=4, cutout=8),
                                             fake_cifar(n_train=96, n_test=30), tmp_path, stop_after=8)
