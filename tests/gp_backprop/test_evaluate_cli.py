"""python -m gp_backprop.evaluate: both curves and mean ± std on success; one line and exit code 2 on bad input."""
import subprocess
import sys

import pytest

from gp_backprop.evaluate import main

TINY = ["--task", "synthetic", "--widths", "16,16", "--epochs", "2", "--seeds", "2"]


def test_prints_both_learning_curves_and_final_accuracies(capsys):
    assert main(["left(norm_fro(g), g)", *TINY]) == 0
    out = capsys.readouterr().out
    assert "baseline left(g, g)" in out and "left(norm_fro(g), g)" in out
    rows = [line for line in out.splitlines() if line.strip().startswith(("1 ", "2 "))]
    assert len(rows) == 2 and all(line.count("±") == 2 for line in rows)     # one cell per rule per epoch
    assert out.count("final val") == 2 and "(ok: 2)" in out


def test_reports_non_ok_statuses_with_their_reason(capsys):
    assert main(["left(inv(sub(g, g)), g)", *TINY]) == 0
    assert "diverged: non-finite loss" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["left(nrom_fro(g), g)"], "bad equation: unknown name 'nrom_fro' at position 5; did you mean norm_fro"),
    (["left(g, g)", "--epoch", "3"], "did you mean --epochs?"),
    (["left(g, g)", "--model", "resnet"], "unknown model arch 'resnet'"),
    (["left(g, g)", "--task", "digitz"], "did you mean 'digits'"),
    (["left(g, g)", "--widths", "64,x"], "--widths must be comma-separated integers"),
    (["left(g, g)", "--seeds", "0"], "--seeds: must be a positive finite number, got '0'"),
    (["left(g, g)", "--baseline", "fa2"], "bad baseline: unknown name 'fa2'"),
    (["left(g, g)", "--task", "cifar10", "--data-root", "/nowhere"], "cifar-10-python.tar.gz"),
])
def test_bad_input_is_one_line_and_exit_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and message in err


def test_the_module_entry_point_exits_2_without_a_traceback():
    proc = subprocess.run([sys.executable, "-m", "gp_backprop.evaluate", "left(g, g)", "--model", "resnet"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("evaluate: error: unknown model arch")
    assert "Traceback" not in proc.stderr
