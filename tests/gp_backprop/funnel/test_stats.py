"""The funnel's statistics on fixed numbers: paired t-tests as scipy computes them, Holm's correction as its definition
gives it, and a `*` only where a finalist beats every control of its setup after the correction."""
from __future__ import annotations

import math
import re

import pytest
from scipy import stats

from gp_backprop.funnel import Finalist, Summary, compare, holm, marked, paired_interval, paired_t, table
from gp_backprop.funnel.records import controls

A = [96.1, 95.8, 96.4, 96.0, 95.9]
B = [95.2, 95.5, 95.1, 95.6, 95.0]
C = [96.3, 95.7, 96.6, 95.9, 96.2]


@pytest.mark.parametrize("a, b", [(A, B), (A, C), (B, C), ([1.0, 2.0, 3.5], [1.5, 1.0, 3.0])])
def test_paired_t_matches_scipy(a: list[float], b: list[float]) -> None:
    diff, p = paired_t(a, b)
    ref = stats.ttest_rel(a, b)
    assert diff == pytest.approx(sum(a) / len(a) - sum(b) / len(b))
    assert p == pytest.approx(ref.pvalue, rel=1e-9)


def test_paired_t_with_constant_differences() -> None:
    assert paired_t([1.0, 2.0], [1.0, 2.0]) == (0.0, 1.0)
    assert paired_t([2.0, 3.0, 4.0], [1.0, 2.0, 3.0]) == (1.0, 0.0)
    with pytest.raises(ValueError, match="at least 2"):
        paired_t([1.0], [2.0])


def test_holm_follows_its_definition() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> kept monotone: 0.06 for the last
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([]) == []


def _row(key: str, label: str, accs: list[float], control: str = "") -> Summary:
    mean = sum(accs) / len(accs)
    std = math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1))
    return Summary(Finalist(key, "", key, control=control), label, mean, std, tuple(accs))


def test_a_star_needs_a_corrected_win_over_every_control() -> None:
    ref, fro = [90.0, 91.0, 90.5, 90.2, 90.8], [90.1, 90.9, 90.7, 90.0, 90.9]
    strong = [x + d for x, d in zip(ref, [1.0, 1.1, 0.9, 1.05, 0.95])]   # ~+1 point on every seed over both
    partial = [x + d for x, d in zip(ref, [0.3, -0.2, 0.4, 0.1, 0.0])]   # no consistent gain
    rows = [_row("ref", "A1", ref, "backprop (reference)"), _row("fro", "A1", fro, "g/||g||_F"),
            _row("strong", "A1", strong), _row("partial", "A1", partial)]
    comps = compare(rows)
    assert len(comps) == 5              # 2 finalists x 2 controls, and the other control against the reference
    raw = {k: paired_t(next(r.accs for r in rows if r.finalist.key == k[0]),
                       next(r.accs for r in rows if r.finalist.key == k[2]))[1] for k in comps}
    expected = dict(zip(raw, holm(list(raw.values()))))
    assert all(comps[k].p_holm == pytest.approx(expected[k]) for k in comps)
    assert comps[("strong", "A1", "ref")].wins == 5 and comps[("partial", "A1", "ref")].losses == 1
    assert ("fro", "A1", "ref") in comps and ("ref", "A1", "fro") not in comps
    assert marked(rows[2], comps) and not marked(rows[3], comps)
    text = table(rows)
    assert "1. strong" in text and text.count(" *") == 1 and "backprop (reference) (control)" in text


def test_a_win_over_one_control_only_is_not_marked() -> None:
    ref = [90.0, 91.0, 90.5, 90.2, 90.8]
    fro = [x + 2 for x in ref]
    strong = [x + d for x, d in zip(ref, [1.0, 1.1, 0.9, 1.05, 0.95])]
    rows = [_row("ref", "A1", ref, "ref"), _row("fro", "A1", fro, "fro"), _row("strong", "A1", strong)]
    comps = compare(rows)
    assert comps[("strong", "A1", "ref")].significant_win and not comps[("strong", "A1", "fro")].significant_win
    assert not marked(rows[2], comps)


class _Run:
    def __init__(self, params: dict[str, str]) -> None:
        self.data = type("D", (), {"params": params})()


@pytest.mark.parametrize("params, names", [
    ({"space.reference": "backprop"}, ["backprop (reference)", "g/||g||_F"]),
    ({"space.reference": "ftp_sh", "space.hard_threshold": "True", "task.model.activation": "sign"},
     ["FTP-SH", "SSTE"]),
    ({"space.reference": "ftp_sh_qrelu", "space.hard_threshold": "True", "task.model.activation": "qrelu"},
     ["FTP-SH", "SSTE"]),
])
def test_controls_follow_the_network(params: dict[str, str], names: list[str]) -> None:
    rows = controls(_Run(params))
    assert [r.control for r in rows] == names
    if params.get("task.model.activation") == "qrelu":
        assert rows[0].equation == "mul(gh, sech2_01(hp))"


def test_paired_interval_matches_scipy() -> None:
    mean, low, high = paired_interval(A, B)
    d = [x - y for x, y in zip(A, B)]
    ref = stats.t.interval(0.95, len(d) - 1, loc=sum(d) / len(d), scale=stats.sem(d))
    assert mean == pytest.approx(sum(d) / len(d)) and (low, high) == pytest.approx(ref, rel=1e-9)
    assert paired_interval(A, A) == (0.0, 0.0, 0.0)


def test_declared_controls_replace_the_standard_ones_after_the_reference() -> None:
    rows = controls(_Run({"space.reference": "backprop"}), ["backprop_fro", "fa"])
    assert [r.control for r in rows] == ["backprop (reference)", "g/||g||_F", "fa"]
    assert rows[2].equation == "mul(mm(b_next, T(R)), dact)"
    sign = {"space.reference": "ftp_sh", "space.hard_threshold": "True", "task.model.activation": "sign"}
    assert [r.control for r in controls(_Run(sign), ["ftp_sh", "sste"])] == ["FTP-SH", "SSTE"]


def test_a_markdown_table_keeps_its_columns_when_a_name_holds_a_bar() -> None:
    ref, fro = [90.0, 91.0, 90.5], [90.1, 90.9, 90.7]
    rows = [_row("ref", "A1", ref, "backprop (reference)"), _row("fro", "A1", fro, "g/||g||_F"),
            _row("max(g, abs(g))", "A1", ref)]
    lines = table(rows, markdown=True).splitlines()
    cells = [re.split(r"(?<!\\)\|", line) for line in lines]
    assert len({len(c) for c in cells}) == 1 and len(cells[0]) == 2 + 4       # row, value, 2 controls
    assert "vs g/\\|\\|g\\|\\|_F" in lines[0]
