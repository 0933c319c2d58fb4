"""The datasets a candidate rule is trained on: a registered name (`digits`, `mnist1d`, `synthetic`, `cifar10`) or a
plug-in `package.module:function`, loaded with `load(dataset, seed=, root=)`."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable

from .cifar10 import load_cifar10
from .digits import load_digits
from .mnist1d import load_mnist1d
from .splits import DataError, Normalize, Split, Splits, batches
from .synthetic import load_synthetic

__all__ = ["DATASETS", "DataError", "Normalize", "Split", "Splits", "batches", "load", "loader"]

# name -> loader(*, seed, root) -> Splits. A new dataset is one file in this package and one line here.
DATASETS: dict[str, Callable[..., Splits]] = {
    "digits": load_digits,
    "mnist1d": load_mnist1d,
    "synthetic": load_synthetic,
    "cifar10": load_cifar10,
}


def loader(dataset: str) -> Callable[..., Splits]:
    """The function that loads `dataset`, without loading it: a cheap check that the name or plug-in resolves.

    A plug-in `package.module:function` is imported here; its function is called as `function(seed=, root=)` and
    must return `Splits`. Raises `DataError` (one line, naming the fix) when it cannot be resolved.
    """
    if ":" in str(dataset):
        return _plugin(dataset)
    found = DATASETS.get(dataset)
    if found is None:
        close = difflib.get_close_matches(str(dataset), DATASETS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"unknown dataset {dataset!r}; valid names: {', '.join(sorted(DATASETS))}, "
                        f"or a plug-in 'package.module:function'{hint}")
    return found


def load(dataset: str, *, seed: int = 0, root: str | None = None) -> Splits:
    """Load `dataset` (a name or `package.module:function`) on the CPU; `seed` fixes the train/val/test split,
    `root` is the data folder (cifar10; passed on to plug-ins). Call `.to(device)` on the result once before training.
    """
    function = loader(dataset)
    if ":" not in str(dataset):
        return function(seed=seed, root=root)
    try:
        splits = function(seed=seed, root=root)
    except Exception as exc:  # the user's code: whatever it raises becomes the one line the CLIs print
        message = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        raise DataError(f"dataset plug-in {dataset!r} raised {message}; fix the function, which is called as "
                        "function(seed=..., root=...)") from None
    if not isinstance(splits, Splits):
        raise DataError(f"dataset plug-in {dataset!r} returned {type(splits).__name__}, not "
                        "evaluators.data.Splits; return Splits(name, train, val, test, num_classes, input_shape)")
    return splits


def _plugin(spec: str) -> Callable[..., Splits]:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise DataError(f"dataset plug-in {spec!r} must be 'package.module:function', e.g. 'mydata:load_splits'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # not found, or the module itself fails on import
        message = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        raise DataError(f"dataset plug-in {spec!r}: cannot import {module_name!r} ({message}); put its folder on "
                        "PYTHONPATH (on every worker machine too) or install its package") from None
    function = getattr(module, attr, None)
    if not callable(function):
        what = f"{module_name}.{attr} is not a function" if hasattr(module, attr) else \
            f"module {module_name!r} has no function {attr!r}"
        close = difflib.get_close_matches(attr, [n for n in vars(module) if not n.startswith("_")], n=1)
        hint = f"; did you mean '{module_name}:{close[0]}'?" if close else ""
        raise DataError(f"dataset plug-in {spec!r}: {what}{hint}")
    return function
