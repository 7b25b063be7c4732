"""Training and evaluation as plain functions: recipe, LR schedule, loop, run directory."""
