"""Extending the DSL: a registered function is checked like gplearn's make_function (the failed check named), then
usable everywhere; every built-in function passes the same check."""
import random

import pytest
import torch

import primitives as P


@pytest.fixture(autouse=True)
def registry_restored():
    """Each test leaves the global registries as it found them."""
    before = dict(P.FUNCTIONS)
    yield
    for name in set(P.FUNCTIONS) - set(before):
        P.unregister_function(name)
    assert P.FUNCTIONS == before


def softsign(x, ctx):
    return x / (1.0 + x.abs())


def test_every_built_in_function_passes_the_registration_check():
    for fn in P.FUNCTIONS.values():
        P.validate_function(fn)


def test_a_good_unary_function_is_usable_in_parse_compile_latex_key_and_mutate():
    P.register_function("softsign", 1, softsign)
    eq = P.parse("left(softsign(g), g)")
    assert P.format(eq) == "left(softsign(g), g)" and P.check(eq)
    assert P.latex(eq) == r"\operatorname{softsign}\left(g\right)"
    probe = P.make_probe("conv")
    out = P.compile(eq)(probe.env(), probe.context())
    env = probe.env()
    torch.testing.assert_close(out, softsign(P.compile("left(g, g)")(env, probe.context()), None))
    rng = random.Random(0)
    seen = {P.display_name(n) for _ in range(300) for n in P.mutate(P.parse("left(abs(g), g)"), rng)}
    assert "softsign" in seen                                   # the search can reach it
    P.unregister_function("softsign")
    with pytest.raises(P.EquationError, match="unknown name 'softsign'"):
        P.parse("left(softsign(g), g)")


def test_a_good_binary_function_keeps_its_flags():
    fn = P.register_function("hypot", 2, lambda x, y, c: torch.hypot(x, y), commutative=True)
    assert P.FUNCTIONS["hypot"] is fn
    assert P.key(P.parse("hypot(g, h)")) == P.key(P.parse("hypot(h, g)"))   # commutative for the cache
    probe = P.make_probe("dense")
    env = probe.env()
    torch.testing.assert_close(P.compile("hypot(hp, h)")(env, probe.context()), torch.hypot(env["hp"], env["h"]))
    with pytest.raises(P.EquationError, match=r"'hypot' at position 0 takes 2 argument\(s\), got 1, e.g. hypot\("):
        P.parse("hypot(g)")


@pytest.mark.parametrize("arity, impl, check", [
    (2, softsign, "arity"),                                           # registered binary, takes one value
    (1, lambda x, y, c: x + y, "arity"),                             # registered unary, takes two values
    (3, lambda x, y, z, c: x, "arity"),                              # the DSL has no ternary functions
    (1, lambda x, c: x.sum(0), "shape"),                             # reduces the sample axis
    (1, lambda x, c: x.reshape(x.shape[0], -1), "shape"),           # flattens conv values
    (1, lambda x, c: x.tolist(), "shape"),                           # not a tensor
    (1, lambda x, c: x / (x - x), "finite"),                         # nan everywhere
    (1, lambda x, c: torch.exp(1e3 * x), "finite"),                  # overflows on ordinary values
    (1, lambda x, c: 1.0 / x, "finite"),                             # inf at zero, not declared
    (2, lambda x, y, c: x @ y, "call"),                              # raises on batch-shaped values
])
def test_a_bad_function_is_refused_with_the_failed_check_named(arity, impl, check):
    with pytest.raises(P.EquationError) as info:
        P.register_function("bad_fn", arity, impl)
    message = str(info.value)
    assert message.startswith(f"function 'bad_fn' fails the {check} check: ") and "\n" not in message
    assert "bad_fn" not in P.FUNCTIONS
    with pytest.raises(P.EquationError, match="unknown name 'bad_fn'"):
        P.parse("left(bad_fn(g), g)")


def test_a_function_non_finite_at_zero_registers_only_when_it_says_so():
    with pytest.raises(P.EquationError, match="fails the finite check: gives inf or nan on zeros"):
        P.register_function("recip", 1, lambda x, c: 1.0 / x)
    P.register_function("recip", 1, lambda x, c: 1.0 / x, finite_at_zero=False)
    assert P.format(P.parse("left(recip(g), g)")) == "left(recip(g), g)"


@pytest.mark.parametrize("name, message", [
    ("abs", "function name 'abs' is taken: choose another name"),
    ("g", "function name 'g' is taken"),
    ("soft sign", "is not one the parser reads"),
    ("f:Layer", "is not one the parser reads"),
])
def test_names_the_parser_cannot_read_or_already_knows_are_refused(name, message):
    with pytest.raises(P.EquationError, match=message):
        P.register_function(name, 1, softsign)


def test_only_registered_functions_can_be_unregistered():
    with pytest.raises(P.EquationError, match="'abs' was not added by register_function"):
        P.unregister_function("abs")
    P.register_function("softsign", 1, softsign)
    with pytest.raises(P.EquationError, match=r"unregister_function\('softsign'\) first"):
        P.register_function("softsign", 1, softsign)
