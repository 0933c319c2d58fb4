"""Dataset plug-ins for the tests: `TaskSpec(dataset="tests.plugin_data:tiny")` and deliberately broken ones."""
from __future__ import annotations

import torch

from evaluators.data import Split, Splits


def tiny(*, seed: int = 0, root: str | None = None) -> Splits:
    """3 well-separated classes in 5-D, 60 / 30 / 30 samples; `seed` fixes the split, as for the built-in datasets."""
    gen = torch.Generator().manual_seed(7)
    y = torch.arange(120) % 3
    x = torch.randn(120, 5, generator=gen) * 0.3
    x[torch.arange(120), y] += 2.0
    order = torch.randperm(120, generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    part = lambda a, b: Split(x[a:b], y[a:b])  # noqa: E731
    return Splits(name="tiny", train=part(0, 60), val=part(60, 90), test=part(90, 120), num_classes=3,
                  input_shape=(5,))


def raises(*, seed: int = 0, root: str | None = None) -> Splits:
    raise FileNotFoundError(f"no data under {root!r}")


def wrong_type(*, seed: int = 0, root: str | None = None) -> dict:
    return {"x": [], "y": []}


not_a_function = 3
