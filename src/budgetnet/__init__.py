"""budgetnet: compact ResNets under a hard parameter budget."""

from budgetnet.counts import DEFAULT_BUDGET, check_budget, count_macs, count_params, layer_counts
from budgetnet.errors import BudgetError, BudgetnetError, CheckpointError, DataError, SpecError
from budgetnet.presets import PRESETS, get_preset, resolve_spec
from budgetnet.spec import ResNetSpec, StageSpec

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BUDGET",
    "PRESETS",
    "BudgetError",
    "BudgetnetError",
    "CheckpointError",
    "DataError",
    "ResNetSpec",
    "SpecError",
    "StageSpec",
    "check_budget",
    "count_macs",
    "count_params",
    "get_preset",
    "layer_counts",
    "resolve_spec",
]

