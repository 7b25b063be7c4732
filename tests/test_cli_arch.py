import json
import subprocess
import sys

import pytest

from budgetnet.cli.main import main
from budgetnet.presets import PRESETS


def run(capsys, *argv):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse exits for usage errors and --help
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_arch_list_table_has_every_preset_and_column(capsys):
    code, out, err = run(capsys, "arch", "list")
    assert code == 0 and err == ""
    header = out.splitlines()[0].split()
    assert header[:8] == ["name", "stages", "blocks", "widths", "kernels", "skip", "params", "MACs"]
    assert "within budget" in out.splitlines()[0]
    for name in PRESETS:
        assert name in out
    row = next(line for line in out.splitlines() if line.startswith("approach-2a"))
    assert "3-5-3" in row and "64-128-256" in row and "4,918,602" in row and row.rstrip().endswith("yes")
    assert next(line for line in out.splitlines() if line.startswith("resnet18")).rstrip().endswith("no")


def test_arch_list_json(capsys):
    code, out, _ = run(capsys, "arch", "list", "--json")
    rows = json.loads(out)
    assert code == 0
    assert [r["name"] for r in rows] == list(PRESETS)
    by_name = {r["name"]: r for r in rows}
    assert by_name["resnet18"]["params"] == 11_173_962
    assert by_name["resnet18"]["within_budget"] is False
    assert by_name["resnet18"]["macs"] == 555_422_720


def test_arch_list_budget_flag(capsys):
    _, out, _ = run(capsys, "arch", "list", "--json", "--budget", "12000000")
    assert all(r["within_budget"] for r in json.loads(out))


def test_arch_show_breakdown_sums(capsys):
    code, out, _ = run(capsys, "arch", "show", "approach-2a", "--json")
    (info,) = json.loads(out)
    assert code == 0
    assert info["name"] == "approach-2a"
    assert sum(g["params"] for g in info["groups"]) == info["params"] == 4_918_602
    assert sum(layer["macs"] for layer in info["layers"]) == info["macs"]
    assert [g["name"] for g in info["groups"]] == ["stem", "stage 1", "stage 2", "stage 3", "head"]


def test_arch_show_text_and_json_file(capsys, tmp_path):
    path = tmp_path / "small.json"
    path.write_text('{"stages": [{"blocks": 1, "width": 8}], "stem_width": 8}')
    code, out, _ = run(capsys, "arch", "show", str(path))
    assert code == 0
    assert out.startswith("small: ")
    assert "stages.0.0.conv1" in out and "head" in out


def test_arch_show_plot_writes_png(capsys, tmp_path):
    out_png = tmp_path / "fig9.png"
    code, _, _ = run(capsys, "arch", "show", "approach-2a", "--plot", str(out_png))
    assert code == 0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out_png.stat().st_size > 10_000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["arch", "show", "approach-9"], "unknown architecture 'approach-9'; known: resnet18, approach-1"),
        (["arch", "show", "nope.json"], "spec file nope.json does not exist"),
        (["arch", "list", "--budget", "-5"], "expected a positive integer"),
        (["arch", "frobnicate"], "invalid choice"),
        (["arch"], "required"),
        (["nosuchverb"], "invalid choice"),
    ],
)
def test_bad_usage_is_one_line_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err
    assert "Traceback" not in err


def test_bad_spec_file_is_one_line_exit_2(capsys, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"stages": [{"blocks": 1, "width": 8}], "conv1_kernel": 4}')
    code, _, err = run(capsys, "arch", "show", str(path))
    assert code == 2
    assert err.strip() == f"budgetnet: error: {path}: conv1_kernel must be odd, got 4"


def test_console_script_and_module_entry_points():
    result = subprocess.run(["budgetnet", "arch", "show", "approach-9"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "known:" in result.stderr
    result = subprocess.run([sys.executable, "-m", "budgetnet", "arch", "list", "--json"], capture_output=True, text=True)
    assert result.returncode == 0
    assert len(json.loads(result.stdout)) == len(PRESETS)


def test_missing_optional_dependency_names_the_extra(capsys, monkeypatch):
    import budgetnet.cli.arch as arch

    def needs_onnx(args):
        raise ModuleNotFoundError("No module named 'onnxruntime'", name="onnxruntime")

    monkeypatch.setattr(arch, "run_list", needs_onnx)
    code, _, err = run(capsys, "arch", "list")
    assert code == 2
    assert err.strip() == ("budgetnet: error: this command needs onnxruntime, from the 'deploy' extra: "
                           "pip install 'budgetnet[deploy]' (or pip install -e '.[deploy]' in a clone)")
