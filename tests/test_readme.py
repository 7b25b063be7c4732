import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_ci_runs_exactly_the_readme_test_command():
    """The last command of .ci/run is the README's test command; the steps before it (system packages) run no tests."""
    test_command = next(c for c in readme_commands() if "pytest" in c)
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.strip().startswith(("#", "set ", "cd "))]
    assert ci_lines[-1] == test_command and ci_lines.count(test_command) == 1
    assert "pytest" not in " ".join(ci_lines[:-1])


def test_readme_preset_table_matches_the_code():
    from budgetnet.counts import count_params
    from budgetnet.presets import PRESETS

    text = (ROOT / "README.md").read_text()
    for name, preset in PRESETS.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
        assert f"{count_params(preset.spec):,}" in row
