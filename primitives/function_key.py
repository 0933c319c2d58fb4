"""A functional-equivalence key: a hash of what a compiled rule outputs on fixed probes, so that equations that
compute the same function (``norm_fro(norm_inf(g))`` and ``norm_fro(g)``) share a key where ``key`` cannot see it.
"""
from __future__ import annotations

import functools
import hashlib

import torch
from torch import Tensor

from primitives.compile import compile_equation
from primitives.context import LayerContext, LinearMaps
from primitives.probe import make_probe

KINDS = ("dense", "conv")
STEPS = 3          # running averages (mhat, shat, bn) carry state: their value at step 1 is the batch's own statistic
BATCH = 9
# Log-uniform scales of probe values, in decades (10^low to 10^high), per sample and per unit or feature.
_SAMPLE_DECADES = (-1.5, 1.0)
_UNIT_DECADES = (-1.5, 0.0)
# Outputs are rounded to 17 significant bits (about 5 decimal digits): float64 noise from a different computation
# order (about 1e-16 relative) lands on the same value, while genuinely different functions do not.
_DROP_BITS = 52 - 17
_HALF = 1 << (_DROP_BITS - 1)
_MASK = -(1 << _DROP_BITS)
# Values this far below the output's largest finite magnitude are cancellation residue (exact zero in another
# computation order): they count as zero.
_FLOOR = 2.0 ** -50
# Tokens for non-finite positions: rounded floats have their low _DROP_BITS bits clear, so these never collide.
_NAN, _POS_INF, _NEG_INF = 1, 2, 3
# What a rule raises on benign operands, as ``check`` counts it (infeasible, not a bug).
_RULE_ERRORS = (RuntimeError, ValueError, ZeroDivisionError)


def _seed(probe_seed: int, kind: str, step: int | str) -> int:
    digest = hashlib.sha256(f"{probe_seed}:{kind}:{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # a non-negative int64, the same in every process


def _log_uniform(gen: torch.Generator, shape: tuple[int, ...], decades: tuple[float, float]) -> Tensor:
    low, high = decades
    return 10.0 ** (torch.rand(shape, generator=gen, dtype=torch.float64) * (high - low) + low)


def _batch(probe_seed: int, kind: str, step: int) -> tuple[LinearMaps, dict[str, Tensor]]:
    """One probe batch whose values span several orders of magnitude, so clips, shifts and thresholds act on some
    of them and not on others: hp is scaled per sample and per unit, b_next and bL per sample and per feature.
    Every 7th unit is dead and every 7th (shifted by one) always active, as in a trained ReLU network: there the
    running statistics of dact and h are constant, and functions that agree elsewhere part. h, dact and hp_next are
    recomputed from the new hp, so the operands stay those of one real layer pair."""
    probe = make_probe(kind, batch=BATCH, seed=_seed(probe_seed, kind, step))
    units = torch.Generator().manual_seed(_seed(probe_seed, kind, "units"))  # a unit keeps its scale over steps
    gen = torch.Generator().manual_seed(_seed(probe_seed, kind, f"scale{step}"))
    t = dict(probe.tensors)

    def scaled(x: Tensor) -> Tensor:
        per_sample = _log_uniform(gen, (BATCH,) + (1,) * (x.dim() - 1), _SAMPLE_DECADES)
        return x * per_sample * _log_uniform(units, tuple(x.shape[1:]), _UNIT_DECADES)

    unit = torch.arange(t["hp"][0].numel()).reshape(t["hp"].shape[1:]) % 7
    hp = scaled(t["hp"].abs())
    hp = torch.where(unit == 0, -hp, torch.where(unit == 1, hp, t["hp"].sign() * hp))
    t["hp"], t["h"], t["dact"] = hp, hp.clamp_min(0), (hp > 0).to(hp.dtype)
    t["hp_next"] = probe.maps.up(t["h"], t["W"])      # the probe's forward map: linear or strided conv
    t["b_next"], t["bL"] = scaled(t["b_next"]), scaled(t["bL"])
    return probe.maps, t


@functools.lru_cache(maxsize=8)
def _probes(probe_seed: int) -> tuple[tuple[str, LinearMaps, tuple[dict[str, Tensor], ...], int], ...]:
    """Per kind: its maps, STEPS fresh batches of consistent operands and a noise seed. Built from their own
    generators only, never the global torch RNG. Shared between calls: rules only read the operand tensors."""
    out = []
    for kind in KINDS:
        batches = [_batch(probe_seed, kind, t) for t in range(STEPS)]
        out.append((kind, batches[0][0], tuple(b for _, b in batches), _seed(probe_seed, kind, "noise")))
    return tuple(out)


def _quantise(out: Tensor) -> bytes:
    """The output rounded to a relative precision, as little-endian int64 words; non-finite positions as tokens."""
    x = out.detach().to(torch.float64).reshape(-1)
    finite = torch.isfinite(x)
    y = torch.where(finite, x, 0.0)
    scale = float(y.abs().max()) if y.numel() else 0.0
    y = torch.where(y.abs() >= scale * _FLOOR, y, 0.0) + 0.0   # + 0.0 turns -0.0 into 0.0
    bits = (y.view(torch.int64) + _HALF) & _MASK
    if not bool(finite.all()):
        bits[torch.isnan(x)] = _NAN
        bits[x == float("inf")] = _POS_INF
        bits[x == float("-inf")] = _NEG_INF
    return bits.numpy().astype("<i8").tobytes()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def function_key(eq: list | str, *, probe_seed: int = 0) -> str:
    """A 16-hex-digit hash of what the equation computes: its outputs on fixed dense and conv probes (``STEPS``
    consecutive batches, one running state and one noise generator per kind, all seeded by ``probe_seed``), rounded
    to about 5 significant digits. Equal functions get equal keys, in any process and call order; the global torch
    RNG is neither read nor advanced. An equation that raises on a probe gets a key of the error class and the probe.
    ``eq`` is an ``Equation`` or its text (parsed in the default set; a parse error propagates)."""
    if not isinstance(probe_seed, int) or isinstance(probe_seed, bool):
        raise TypeError(f"probe_seed must be an int, got {probe_seed!r}; pass e.g. probe_seed=1")
    rule = compile_equation(eq)
    h = hashlib.sha256()
    for kind, maps, batches, noise_seed in _probes(probe_seed):
        ctx = LayerContext(maps, torch.Generator().manual_seed(noise_seed))
        for step, tensors in enumerate(batches):
            try:
                with torch.no_grad():
                    out = rule(dict(tensors), ctx)
            except _RULE_ERRORS as exc:
                return _digest(f"raises {type(exc).__name__} on {kind}")
            h.update(f"{kind}{step}{tuple(out.shape)};".encode())
            h.update(_quantise(out))
    return h.hexdigest()[:16]
