"""Random equations and mutations: always well-typed and shape-feasible, in both forms and both sets."""
import random
from collections import Counter

import pytest
import torch

import primitives as P

PROBES = (P.make_probe("dense", dtype=torch.float32), P.make_probe("conv", dtype=torch.float32))


def shape_feasible(eq) -> bool:
    rule = P.compile(eq)
    with torch.no_grad():
        return all(rule(p.env(), p.context()).shape == p.tensors["hp"].shape for p in PROBES)


@pytest.mark.parametrize("form", ["paper", "free"])
def test_ten_thousand_random_equations_and_mutations_are_shape_feasible(form):
    rng = random.Random(2024)
    pset = P.default_pset(hard_threshold=form == "free")
    blocks = Counter()
    for _ in range(5_000):  # 5,000 per form: 10,000 random equations and 10,000 mutants in all
        eq = P.random_equation(rng, pset, form=form)
        assert shape_feasible(eq), P.format(eq)
        if form == "paper":
            assert P.is_paper_form(eq), P.format(eq)
            blocks[sum(node.arity == 2 for node in eq)] += 1
        else:
            # Limits bind the grown tree; a tree that reads as paper form gets its implied identities added.
            assert P.is_paper_form(eq) or (len(eq) <= 15 and eq.height <= 5)  # height counts edges: 6 levels
        mutant = P.mutate(eq, rng, k=rng.choice([1, 1, 2, 3]), pset=pset)
        assert shape_feasible(mutant), P.format(mutant)
        assert P.is_paper_form(mutant) == P.is_paper_form(eq)
    if form == "paper":
        assert set(blocks) == {1, 2, 3} and min(blocks.values()) > 1_000   # 1 to 3 binary operations


def test_mutation_reaches_every_component_the_root_included():
    rng = random.Random(0)
    seed = P.parse(P.SEEDS["backprop_fro"])          # left(norm_fro(g), id(g))
    changed = Counter()
    for _ in range(2_000):
        mutant = P.mutate(seed, rng)
        diff = [i for i, (a, b) in enumerate(zip(seed, mutant)) if a.name != b.name]
        assert len(diff) == 1                        # exactly one component swapped
        i = diff[0]
        assert mutant[i].arity == seed[i].arity and mutant[i].ret == seed[i].ret
        changed[i] += 1
    assert set(changed) == set(range(len(seed)))     # root binary, both unaries and both operands
    assert min(changed.values()) > 300               # uniformly over components


def test_mutation_swaps_within_kind_and_signature():
    rng = random.Random(1)
    eq = P.parse(P.SEEDS["fa"])                      # mul(mm(b_next, T(R)), dact)
    for _ in range(500):
        mutant = P.mutate(eq, rng)
        for a, b in zip(eq, mutant):
            assert a.arity == b.arity and a.ret == b.ret and getattr(a, "args", ()) == getattr(b, "args", ())
            if P.display_name(a) in ("mm", "T"):     # the only products/transposes of their signature stay
                assert a.name == b.name


def test_generation_is_reproducible_from_the_rng():
    a = [P.format(P.random_equation(random.Random(7), form=f)) for f in ("paper", "free")]
    b = [P.format(P.random_equation(random.Random(7), form=f)) for f in ("paper", "free")]
    assert a == b
    eq = P.random_equation(random.Random(3))
    assert P.format(P.mutate(eq, random.Random(5), k=2)) == P.format(P.mutate(eq, random.Random(5), k=2))


def test_free_form_limits_hold_even_when_tight():
    rng = random.Random(3)
    for _ in range(2_000):
        eq = P.random_equation(rng, form="free", max_depth=2, max_size=3)
        assert P.is_paper_form(eq) or (2 <= len(eq) <= 3 and eq.height <= 1)


def test_blocks_and_forms_are_validated():
    eq = P.random_equation(random.Random(0), blocks=3)
    assert sum(n.arity == 2 for n in eq) == 3
    with pytest.raises(ValueError, match="blocks=4 is not possible"):
        P.random_equation(random.Random(0), blocks=4)
    with pytest.raises(ValueError, match="unknown form 'deep'"):
        P.random_equation(random.Random(0), form="deep")


def test_hard_threshold_extension_is_opt_in():
    paper, hard = P.make_pset(), P.make_pset(hard_threshold=True)
    names = lambda pset: {P.display_name(p) for p in pset.mapping.values()}  # noqa: E731
    assert {"tanh", "sech2", "sech2_01", "win11", "win01"} <= names(hard) - names(paper)
    rng = random.Random(0)
    seen = set()
    for _ in range(300):
        seen |= {P.display_name(n) for n in P.mutate(P.parse(P.SEEDS["ftp_sh"], hard), rng, pset=hard)}
    assert "sech2" in seen and seen & {"tanh", "win11", "win01", "sech2_01"}


def test_check_flags_what_types_cannot():
    assert P.check(P.parse("left(g, g)"))
    assert not P.check(P.parse("div(g, sub(g, g))"))          # 0/0 everywhere
    assert "non-finite" in P.check(P.parse("left(inv(dact), g)")).reason
