"""Keys: canonical, so equal functions share one, and stable across processes."""
import json
import random
import subprocess
import sys

import primitives as P


def test_keys_ignore_what_changes_nothing():
    k = lambda text: P.key(P.parse(text))  # noqa: E731
    assert k("left(g, h)") == k("left(g, mhat(dact))") == k("add(id(g), neg(g))".replace("add", "left"))
    assert k("add(g, h)") == k("add(h, g)") and k("min(g, bn(h))") == k("min(bn(h), g)")
    assert k("sub(g, h)") != k("sub(h, g)")
    assert k("left(norm_elem_2(g), g)") == k("left(norm_fro(g), g)")  # the same function under two names
    assert k(P.SEEDS["backprop"]) != k(P.SEEDS["fa"])


def test_keys_are_stable_across_processes():
    rng = random.Random(11)
    texts = list(P.SEEDS.values()) + [P.format(P.random_equation(rng, P.default_pset(True), form=f))
                                      for f in ("paper", "free") for _ in range(50)]
    code = ("import json, sys, primitives as P; "
            "print(json.dumps([P.key(P.parse(t)) for t in json.load(sys.stdin)]))")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "12345", "PATH": ""})
    assert json.loads(out.stdout) == [P.key(P.parse(t)) for t in texts]
    assert len(set(json.loads(out.stdout))) > 90


def test_import_primitives_pulls_in_neither_evaluators_nor_gp_backprop():
    code = "import sys, primitives; print(sorted(m for m in sys.modules if m.split('.')[0] in " \
           "('evaluators', 'gp_backprop')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
