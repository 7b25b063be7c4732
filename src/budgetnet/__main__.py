"""`python -m budgetnet`, which torchrun needs: `torchrun --nproc-per-node N -m budgetnet train ...`."""

from budgetnet.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
