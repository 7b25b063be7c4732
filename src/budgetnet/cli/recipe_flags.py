"""The recipe's flags, generated from the Recipe dataclass's fields: one flag per field, help in its metadata.

A new Recipe field with flag metadata is a `budgetnet train` flag without touching the CLI; `--resume`
refuses each of them, and the model card's reproduce command spells each of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing

from budgetnet.cli.argtypes import epoch_list, nonneg_float, nonneg_int, positive_int
from budgetnet.train.recipe import RECIPES, Recipe, flag_fields


def flag_name(field: dataclasses.Field) -> str:
    """The field's command-line spelling: batch_size -> --batch-size."""
    return "--" + field.name.replace("_", "-")


def _parser_for(kind: type, least: int | None) -> typing.Callable[[str], typing.Any]:
    if kind is int:
        return positive_int if least == 1 else nonneg_int
    if kind is float:
        return nonneg_float
    if kind == tuple[int, ...]:
        return epoch_list
    return str


def _shown(value: typing.Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return "all" if value is None else str(value)


def add_recipe_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """`--recipe NAME` and one flag per Recipe field but those in `skip`; each defaults to None, the named
    recipe's value."""
    hints = typing.get_type_hints(Recipe)
    paper = Recipe()
    group = parser.add_argument_group("recipe (defaults: the --recipe's values)")
    group.add_argument("--recipe", default="paper", choices=sorted(RECIPES),
                       help="named recipe to start from (default paper)")
    for field in flag_fields():
        if field.name in skip:
            continue
        meta, kind = field.metadata, hints[field.name]
        help_text = f"{meta['help']} (paper: {_shown(getattr(paper, field.name))})"
        if kind is bool:
            group.add_argument(flag_name(field), dest=field.name, action=argparse.BooleanOptionalAction, help=help_text)
            continue
        if isinstance(kind, types.UnionType):  # int | None -> int
            kind = next(t for t in typing.get_args(kind) if t is not type(None))
        if meta["choices"]:
            group.add_argument(flag_name(field), dest=field.name, choices=meta["choices"], help=help_text)
        else:
            group.add_argument(flag_name(field), dest=field.name, type=_parser_for(kind, meta["least"]),
                               metavar=field.name.upper(), help=help_text)


def given_recipe_flags(args: argparse.Namespace) -> list[str]:
    """The recipe flags the user gave, as spelled on the command line."""
    return [flag_name(f) for f in flag_fields() if getattr(args, f.name, None) is not None]


def resolve_recipe(args: argparse.Namespace) -> Recipe:
    """The named recipe (`--recipe`) with every given recipe flag applied.

    `--epochs` compresses or stretches the recipe's schedule along (milestones, warm-up and low-res epochs
    move proportionally, as in `reproduce`); an explicit `--milestones`, `--warmup-epochs` or
    `--low-res-epochs` is taken as given.
    """
    from budgetnet.train.reproduce import named_recipe

    recipe = named_recipe(args.recipe, getattr(args, "epochs", None))
    return recipe.replace(**{f.name: getattr(args, f.name, None) for f in flag_fields()})
