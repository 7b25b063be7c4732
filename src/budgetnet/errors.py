"""Errors a user can cause and fix; the CLI prints them as one line and exits with code 2."""


class BudgetnetError(Exception):
    """A problem with the user's input: a bad spec, flag, file or budget."""


class SpecError(BudgetnetError, ValueError):
    """An architecture spec that is malformed or names an unknown preset."""


class BudgetError(BudgetnetError):
    """A spec whose trainable parameters exceed the budget."""


class DataError(BudgetnetError):
    """A dataset file or folder that is missing, corrupt or malformed."""


class CheckpointError(BudgetnetError):
    """A file that is not a budgetnet checkpoint or export, or has an unsupported format."""
