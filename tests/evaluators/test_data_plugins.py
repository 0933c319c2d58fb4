"""Plug-in datasets: `TaskSpec(dataset="package.module:function")` trains on what the user's function returns, and a
plug-in that cannot be used is one `DataError` line naming it and the fix."""
from __future__ import annotations

import pytest

from evaluators import DataError, TaskSpec, check_task, evaluate, load
from primitives import SEEDS

PLUGIN = "tests.plugin_data:tiny"


def test_a_plugin_loads_with_the_keyword_arguments_of_the_built_in_loaders() -> None:
    s, again, other = load(PLUGIN, seed=0), load(PLUGIN, seed=0, root="/unused"), load(PLUGIN, seed=1)
    assert (s.name, len(s.train), len(s.val), s.input_shape, s.num_classes) == ("tiny", 60, 30, (5,), 3)
    assert s.train.x.equal(again.train.x) and not s.train.x.equal(other.train.x)   # seed= reached the function


def test_a_rule_trains_on_the_plugin_data() -> None:
    r = evaluate(SEEDS["backprop"], TaskSpec(dataset=PLUGIN, epochs=5, batch_size=8).with_(model_widths=(8,)))
    assert r.status == "ok", r.message
    assert r.val_acc > 0.8 and round(r.val_acc * 30, 6).is_integer()             # 30 plug-in validation samples


@pytest.mark.parametrize("dataset, message", [
    ("tests.no_such_module:tiny", r"^dataset plug-in 'tests.no_such_module:tiny': cannot import "
                                  r"'tests.no_such_module' \(ModuleNotFoundError.*\); put its folder on PYTHONPATH"),
    ("tests.plugin_data:tinny", r"^dataset plug-in 'tests.plugin_data:tinny': module 'tests.plugin_data' has no "
                                r"function 'tinny'; did you mean 'tests.plugin_data:tiny'\?$"),
    ("tests.plugin_data:not_a_function", r"tests.plugin_data.not_a_function is not a function"),
    ("tests.plugin_data:", r"must be 'package.module:function'"),
])
def test_a_plugin_that_does_not_resolve_fails_the_cheap_task_check(dataset: str, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        check_task(TaskSpec(dataset=dataset))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("dataset, message", [
    ("tests.plugin_data:raises", r"^dataset plug-in 'tests.plugin_data:raises' raised FileNotFoundError: no data "
                                 r"under None; fix the function, which is called as function\(seed=..., root=...\)$"),
    ("tests.plugin_data:wrong_type", r"^dataset plug-in 'tests.plugin_data:wrong_type' returned dict, not "
                                     r"evaluators.data.Splits; return Splits\("),
])
def test_a_plugin_that_raises_or_returns_the_wrong_type_is_one_line(dataset: str, message: str) -> None:
    check_task(TaskSpec(dataset=dataset))                                           # it resolves...
    with pytest.raises(DataError, match=message) as info:
        load(dataset)                                                               # ...but cannot be used
    assert "\n" not in str(info.value)


def test_an_unknown_name_mentions_plugins() -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'mnist'.*or a plug-in 'package.module:function'"):
        check_task(TaskSpec(dataset="mnist"))
