"""The functional key: equal functions share one where the syntactic key cannot tell, different ones do not."""
import json
import random
import subprocess
import sys

import pytest
import torch

import primitives as P
from primitives.functions import Fn

fk = P.function_key


def skey(text):
    return P.key(P.parse(text))


def test_matrix_norms_of_a_normalised_value_collapse_to_one_key():
    # Every matrix norm divides by a positive scalar, so the outer norm_fro undoes the inner one; the results differ
    # in the last bits (a different order of operations), which the rounding absorbs.
    texts = ["norm_fro(norm_inf(g))", "norm_fro(norm_elem_inf(g))", "norm_fro(norm_fro(g))", "norm_fro(g)",
             "norm_elem_2(g)", P.SEEDS["backprop_fro"]]
    assert len({skey(t) for t in texts}) > 1
    assert len({fk(t) for t in texts}) == 1


def test_identity_forms_collapse_to_one_key():
    texts = ["g", "id(g)", "left(g, dact)", "left(id(g), mm(b_next, T(W)))", P.SEEDS["backprop"],
             P.SEEDS["backprop_chain"], "mul(gh, dact)"]
    assert len({skey(t) for t in texts}) > 1
    assert len({fk(t) for t in texts}) == 1


def test_different_functions_get_different_keys():
    # down to a relative difference of 1e-4 (g against 1.0001 g)
    texts = ["g", "scale_2(g)", "neg(g)", P.SEEDS["fa"], P.SEEDS["dfa"], P.SEEDS["sign_symmetry"], "clip_0.1(g)",
             "add(g, scale_0.01(h))", "add(g, scale_0.01(scale_0.01(g)))", "mhat(g)", "shat(g)", "bn(g)", "addnoise_0.01(g)", "drop_0.1(g)"]
    assert len({fk(t) for t in texts}) == len(texts)


def test_keys_are_deterministic_and_leave_the_global_rng_alone():
    texts = ["g", "addnoise_0.1(g)", "mulnoise_0.5(fa)", "drop_0.3(g)", "bn(hp)"]
    torch.manual_seed(1)
    first = [fk(t) for t in texts]
    torch.manual_seed(2)
    state = torch.get_rng_state()
    assert [fk(t) for t in reversed(texts)] == first[::-1]
    assert torch.equal(torch.get_rng_state(), state)
    # Noise is part of the function: of the same kind drawn the same way it merges, of another scale it does not.
    assert fk("addnoise_0.1(g)") != fk("g") != fk("drop_0.3(g)")
    assert fk("addnoise_0.1(g)") == fk("left(addnoise_0.1(g), h)") != fk("addnoise_0.5(g)")


def test_keys_are_the_same_in_another_process():
    rng = random.Random(5)
    texts = list(P.SEEDS.values())[:7] + [P.format(P.random_equation(rng, P.default_pset(), form=f))
                                          for f in ("paper", "free") for _ in range(10)]
    code = ("import json, sys, torch, primitives as P; torch.manual_seed(123); torch.set_num_threads(2); "
            "texts = json.load(sys.stdin)[::-1]; print(json.dumps([P.function_key(t) for t in texts][::-1]))")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "7", "PATH": ""})
    assert json.loads(out.stdout) == [fk(t) for t in texts]


def test_running_averages_carry_state_over_the_probe_steps():
    assert fk("mhat(g)") != fk("g")
    assert fk("mhat(g)") == fk("mhat(g)")  # a fresh running state each call
    assert fk("bn(g)") != fk("shat(g)") != fk("mhat(g)")


def test_non_finite_outputs_hash_by_kind_and_zero_has_one_sign():
    keys = [fk(t) for t in ("inv(sub(g, g))", "inv(neg(sub(g, g)))", "div(sub(g, g), sub(g, g))", "sub(g, g)")]
    assert len(set(keys)) == 4                                         # +inf, -inf, NaN and zero
    assert fk("neg(sub(g, g))") == fk("sub(g, g)") == fk("mul(g, sub(h, h))")  # -0.0 is 0.0


def test_an_equation_that_raises_gets_a_key_of_its_error(monkeypatch):
    def fails(exc):
        def impl(x, ctx):
            raise exc("probe")
        return Fn("sq", 1, impl, lambda a: a)

    monkeypatch.setitem(P.FUNCTIONS, "sq", fails(RuntimeError))
    runtime = fk("sq(g)")
    assert runtime == fk("sq(h)") == fk("sq(g)") != fk("g")
    monkeypatch.setitem(P.FUNCTIONS, "sq", fails(ZeroDivisionError))
    assert fk("sq(g)") != runtime


def test_bad_text_is_an_equation_error():
    with pytest.raises(P.EquationError, match="nosuch"):
        fk("nosuch(g)")
    with pytest.raises(TypeError, match="probe_seed must be an int"):
        fk("g", probe_seed="1")


def _feasible_random(counts: dict[str, int]) -> list:
    eqs = []
    for form, n in counts.items():
        rng, found = random.Random(2024), []
        while len(found) < n:
            eq = P.random_equation(rng, P.default_pset(), form=form)
            if P.check(eq):  # the controller keys only feasible candidates
                found.append(eq)
        eqs += found
    return eqs


def test_no_false_merges_between_independent_probes():
    """Every two equations one probe merges, an independent probe merges too; and merges do happen."""
    eqs = _feasible_random({"paper": 800, "free": 200})
    assert len(eqs) * (len(eqs) - 1) // 2 >= 10_000
    first = [fk(e, probe_seed=0) for e in eqs]
    second = [fk(e, probe_seed=1) for e in eqs]
    assert sum(a != b for a, b in zip(first, second)) > 0.9 * len(eqs)  # another probe (constants stay put)
    groups = {}
    for i, k in enumerate(first):
        groups.setdefault(k, []).append(i)
    false = [[str(eqs[i]) for i in g] for g in groups.values() if len({second[i] for i in g}) > 1]
    assert false == []
    merged = [g for g in groups.values() if len({P.key(eqs[i]) for i in g}) > 1]
    assert len(merged) >= 3  # not vacuous: syntactically different random equations do share keys
    assert len(groups) > 0.9 * len(eqs)  # and most stay apart
