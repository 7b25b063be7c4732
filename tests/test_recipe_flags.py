"""`budgetnet train`'s recipe flags come from the Recipe dataclass: every field has one, and the model card's
reproduce command parses back to the recipe it was written from."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetnet.cli.main import build_parser, main
from budgetnet.cli.recipe_flags import flag_name, resolve_recipe
from budgetnet.deploy.card import train_command
from budgetnet.train.recipe import AUGMENT_MODES, OPTIMIZERS, PRECISIONS, RECIPES, SCHEDULES, Recipe, flag_fields


def _train_options() -> dict[str, str]:
    """flag -> dest of every option `budgetnet train` has."""
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]  # argparse keeps sub-parsers here
    return {option: action.dest for action in train._actions for option in action.option_strings}


def test_every_recipe_field_but_its_name_is_a_train_flag() -> None:
    options = _train_options()
    names = {f.name for f in dataclasses.fields(Recipe)}
    assert {f.name for f in flag_fields()} == names - {"name"}
    for field in flag_fields():
        assert options.get(flag_name(field)) == field.name, field.name
        assert field.metadata["help"], field.name


def test_the_help_shows_each_fields_text_and_the_papers_value(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for field in flag_fields():
        assert flag_name(field) in text
        assert " ".join(field.metadata["help"].split())[:30] in text, field.name
    assert "(paper: 15,25,35,45)" in text and "(paper: 32)" in text


def _changed(base: str, changes: dict) -> Recipe:
    if not changes.get("tta", RECIPES[base].tta):
        changes = {**changes, "tta_shift": 0}  # shifted views need TTA
    if "epochs" in changes and "low_res_epochs" not in changes:  # the last epoch trains at full size
        changes = {**changes, "low_res_epochs": min(RECIPES[base].low_res_epochs, changes["epochs"] - 1)}
    return RECIPES[base].replace(**changes)


recipes = st.builds(
    _changed,
    st.sampled_from(sorted(RECIPES)),
    st.fixed_dictionaries({}, optional={
        "epochs": st.integers(3, 60), "batch_size": st.integers(1, 1024), "lr": st.floats(1e-4, 2.0),
        "momentum": st.floats(0.1, 0.99), "weight_decay": st.floats(0, 1e-2), "gamma": st.floats(0.01, 1.0),
        "milestones": st.lists(st.integers(1, 60), unique=True, max_size=4).map(lambda m: tuple(sorted(m))),
        "schedule": st.just("multistep"), "nesterov": st.booleans(), "ema_decay": st.floats(0, 0.999),
        "tta": st.booleans(), "tta_shift": st.integers(0, 4), "eval_every": st.integers(1, 5), "label_smoothing": st.floats(0, 0.5),
        "augment": st.sampled_from(AUGMENT_MODES), "seed": st.integers(0, 2**31), "subset": st.integers(1, 50_000),
        "val_split": st.integers(0, 5_000), "precision": st.sampled_from(PRECISIONS),
        "optimizer": st.sampled_from(OPTIMIZERS), "muon_lr": st.floats(1e-3, 1.0),
        "low_res_epochs": st.integers(0, 2), "low_res_size": st.integers(2, 32),
    }),
)


@settings(max_examples=60, deadline=None)
@given(recipe=recipes)
def test_the_cards_reproduce_command_parses_back_to_the_same_recipe(recipe: Recipe) -> None:
    command = train_command(Path("runs/r"), "approach-2a", recipe.to_dict(), "data/cifar")
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert resolve_recipe(args) == recipe


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_each_schedule_round_trips(schedule: str) -> None:
    recipe = RECIPES["fast"].replace(schedule=schedule, epochs=10, warmup_epochs=1.0)
    command = train_command(Path("runs/r"), "resnet-cpu", recipe.to_dict(), "data")
    assert resolve_recipe(build_parser().parse_args(shlex.split(command)[1:])) == recipe


@pytest.mark.parametrize("field", [f.name for f in flag_fields()])
def test_resume_refuses_every_recipe_flag(field: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    value = {"milestones": "3", "augment": "none", "schedule": "linear", "precision": "fp32",
             "optimizer": "muon"}.get(field, "1")
    kind = next(f for f in flag_fields() if f.name == field)
    flag = [flag_name(kind)] if isinstance(getattr(Recipe(), field), bool) else [flag_name(kind), value]
    assert main(["train", "--resume", str(tmp_path), *flag]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag_name(kind) in err


CPU = RECIPES["cpu"]


@pytest.mark.parametrize("argv, expected", [
    (["--recipe", "cpu", "--epochs", "9"], {"epochs": 9, "milestones": (),
                                             "warmup_epochs": pytest.approx(CPU.warmup_epochs * 9 / CPU.epochs)}),
    (["--recipe", "cpu", "--epochs", "1"], {"epochs": 1, "warmup_epochs": pytest.approx(CPU.warmup_epochs / CPU.epochs)}),  # 2 warm-up epochs would not fit
    (["--epochs", "10"], {"epochs": 10, "milestones": (3, 5, 7, 9)}),  # the paper's 15/25/35/45 of 50
    (["--epochs", "10", "--milestones", "4"], {"milestones": (4,)}),  # given values are taken as given
    (["--recipe", "cpu", "--epochs", "8", "--warmup-epochs", "3"], {"warmup_epochs": 3.0}),
    (["--recipe", "cpu"], {"epochs": RECIPES["cpu"].epochs, "warmup_epochs": RECIPES["cpu"].warmup_epochs}),
])
def test_epochs_move_the_schedule_along_as_reproduce_does(argv: list[str], expected: dict) -> None:
    from budgetnet.train.reproduce import named_recipe

    recipe = resolve_recipe(build_parser().parse_args(["train", *argv]))
    assert {key: getattr(recipe, key) for key in expected} == expected
    if "--milestones" not in argv and "--warmup-epochs" not in argv:
        assert recipe == named_recipe(recipe.name, recipe.epochs)


def test_reproduce_takes_the_same_recipe_flags_but_seed() -> None:
    args = build_parser().parse_args(["reproduce", "--data", "d", "--recipe", "cpu", "--epochs", "6",
                                      "--warmup-epochs", "0.75", "--eval-every", "1"])
    recipe = resolve_recipe(args)
    assert (recipe.name, recipe.epochs, recipe.warmup_epochs, recipe.eval_every) == ("cpu", 6, 0.75, 1)
    assert recipe.label_smoothing == RECIPES["cpu"].label_smoothing
    assert "seed" not in vars(args) and args.seeds == 1  # --seeds numbers the runs instead
