"""evaluate_many trains members as one batched network and gives each what evaluate gives it: the same gradients,
the same statuses, results independent of the other members, the same accuracy on average."""
import dataclasses
import statistics

import pytest
import torch

import evaluators.batched.train as batched_train
import evaluators.population as population
import evaluators.train as single_train
import primitives.functions as functions
from evaluators import TaskError, TaskSpec, evaluate, evaluate_many
from evaluators.batched.link import BatchedLink
from evaluators.batched.shared import SharedRule
from evaluators.batched.sizing import group_sizes, member_bytes
from primitives import SEEDS

DIGITS = TaskSpec(epochs=1, max_train_batches=3).with_(model_widths=(32, 16))
FAST = TaskSpec(epochs=6).with_(model_widths=(32, 32))
NOISE_RULE = "add(g, addnoise_0.1(gh))"
# Running averages carried across steps. Not bn(.): its batch-centred values sum to ~0 over the batch, so a bias
# gradient made of them is all rounding, and relative errors of rounding mean nothing.
RUNNING_RULE = "add(g, mhat(gh))"


def record_gradients(monkeypatch) -> tuple[dict, dict]:
    """Gradients at every optimizer step, by member seed: evaluate's per model, evaluate_many's per row block."""
    single, batched = {}, {}
    make_single, make_batched = single_train.make_optimizer, batched_train.make_optimizer

    def single_optimizer(model, task):
        opt = make_single(model, task)
        step, params = opt.step, list(model.parameters())

        def recording_step():
            single.setdefault(task.seed, []).append([p.grad.clone() for p in params])
            step()
        opt.step = recording_step
        return opt

    def batched_optimizer(params, tasks):
        opt = make_batched(params, tasks)
        step = opt.step

        def recording_step():
            for j, task in enumerate(tasks):   # no member leaves these batches, so row block j is tasks[j]
                batched.setdefault(task.seed, []).append([p.grad[j].clone() for p in opt.params])
            step()
        opt.step = recording_step
        return opt

    monkeypatch.setattr(single_train, "make_optimizer", single_optimizer)
    monkeypatch.setattr(batched_train, "make_optimizer", batched_optimizer)
    return single, batched


def assert_same_gradients(members, monkeypatch, steps=3):
    single, batched = record_gradients(monkeypatch)
    many = evaluate_many(members)
    ones = [evaluate(text, task) for text, task in members]
    assert [r.status for r in many] == [r.status for r in ones] == ["ok"] * len(members)
    for text, task in members:
        assert len(batched[task.seed]) == len(single[task.seed]) == steps
        for step, (got, want) in enumerate(zip(batched[task.seed], single[task.seed])):
            assert len(got) == len(want)
            for g, w in zip(got, want):
                error = torch.linalg.vector_norm(g - w) / torch.linalg.vector_norm(w).clamp_min(1e-30)
                assert error <= 1e-5, f"{text} seed {task.seed} step {step + 1}: relative error {error:.2e}"


def test_gradients_of_the_first_steps_equal_evaluates(monkeypatch):
    members = [(None, DIGITS.with_(seed=0, lr=0.1)), (SEEDS["fa"], DIGITS.with_(seed=1, lr=0.05)),
               (RUNNING_RULE, DIGITS.with_(seed=2, lr=0.2)), (SEEDS["dfa"], DIGITS.with_(seed=3, lr=0.1)),
               (NOISE_RULE, DIGITS.with_(seed=4, lr=0.1)), (SEEDS["fa"], DIGITS.with_(seed=5, lr=0.3)),
               (SEEDS["backprop"], DIGITS.with_(seed=6, lr=0.1, optimizer="momentum", weight_decay=1e-3))]
    assert_same_gradients(members, monkeypatch)


def test_adam_members_and_schedules_get_evaluates_gradients(monkeypatch):
    adam = DIGITS.with_(optimizer="adam", lr=0.01, schedule="cosine")
    members = [(SEEDS["fa"], adam.with_(seed=0)), (None, adam.with_(seed=1, weight_decay=1e-3)),
               (SEEDS["backprop"], DIGITS.with_(seed=2, schedule="cosine")),
               (SEEDS["backprop"], DIGITS.with_(seed=3, schedule="step", lr_decay_epochs=(1,)))]
    assert_same_gradients(members, monkeypatch)


@pytest.mark.parametrize("activation, rule", [
    ("sign", SEEDS["ftp_sh"]), ("qrelu", SEEDS["sste_qrelu"]), ("sign_ftp_sh_unscaled", None),
    ("qrelu_sat_hinge_unscaled", None), ("tanh", SEEDS["backprop_chain"])])
def test_hard_threshold_and_other_activations_get_evaluates_gradients(activation, rule, monkeypatch):
    task = DIGITS.with_(model_activation=activation)
    assert_same_gradients([(rule, task.with_(seed=0)), (rule, task.with_(seed=1, lr=0.05))], monkeypatch)


@pytest.mark.parametrize("model", [dict(model_arch="convnet"), dict(model_arch="wrn", model_depth=10, model_width=1),
                                   dict(model_arch="convnet4")])
def test_conv_models_get_evaluates_gradients(model, monkeypatch):
    task = DIGITS.with_(batch_size=16, **model)
    members = [(None, task.with_(seed=0)), (SEEDS["fa"], task.with_(seed=1)), (RUNNING_RULE, task.with_(seed=2))]
    assert_same_gradients(members, monkeypatch)


@pytest.mark.parametrize("text", [SEEDS["fa"], SEEDS["dfa"], RUNNING_RULE, SEEDS["backprop_fro"], "add(g, shat(gh))"])
@pytest.mark.parametrize("arch", ["mlp", "convnet"])
def test_one_equation_at_several_seeds_is_applied_once_and_gets_evaluates_gradients(text, arch, monkeypatch):
    calls = []
    call = SharedRule.__call__
    monkeypatch.setattr(SharedRule, "__call__", lambda self, *args: calls.append(1) or call(self, *args))
    task = DIGITS.with_(model_arch=arch, batch_size=16)
    assert_same_gradients([(text, task.with_(seed=s, lr=0.05 * (s + 1))) for s in range(3)], monkeypatch)
    assert calls, "the vmapped path was not taken"


# Rules that read neither g nor gh: the batch never asks autograd for g (one equation, or several). Not
# sign_symmetry: sgn(W) flips with a near-zero weight's rounding, which makes 1e-5 meaningless by step 3.
NO_G_RULES = [[SEEDS["fa"]] * 3, [SEEDS["dfa"]] * 3, [SEEDS["fa"], SEEDS["backprop_chain"], SEEDS["dfa"]]]


@pytest.mark.parametrize("texts", NO_G_RULES)
@pytest.mark.parametrize("arch", ["mlp", "convnet"])
def test_rules_without_g_skip_autograds_g_and_get_evaluates_gradients(texts, arch, monkeypatch):
    calls = []
    value = BatchedLink._direct_value
    monkeypatch.setattr(BatchedLink, "_direct_value", lambda self, b: calls.append(1) or value(self, b))
    task = DIGITS.with_(model_arch=arch, batch_size=16)
    assert_same_gradients([(text, task.with_(seed=s, lr=0.05 * (s + 1))) for s, text in enumerate(texts)],
                          monkeypatch)
    assert calls, "the path without autograd's g was not taken"


def test_a_failing_rule_without_g_leaves_the_others_bit_identical(monkeypatch):
    def broken(x, ctx):
        raise RuntimeError("injected failure in cube")
    monkeypatch.setitem(functions.FUNCTIONS, "cube", dataclasses.replace(functions.FUNCTIONS["cube"], impl=broken))
    healthy = [(SEEDS["fa"], FAST.with_(seed=0, epochs=2)), (SEEDS["dfa"], FAST.with_(seed=2, epochs=2))]
    failing = ("mul(mm(b_next, T(R)), cube(dact))", FAST.with_(seed=1, epochs=2))
    mixed = evaluate_many([healthy[0], failing, healthy[1]])
    assert [r.status for r in mixed] == ["ok", "error", "ok"]
    assert mixed[1].message == evaluate(*failing).message
    assert [strip_time(r) for r in (mixed[0], mixed[2])] == [strip_time(r) for r in evaluate_many(healthy)]


def strip_time(result):
    return dataclasses.replace(result, wall_time=0.0)


def test_each_member_gets_its_own_status(monkeypatch):
    def broken(x, ctx):
        raise RuntimeError("injected failure in cube")
    monkeypatch.setitem(functions.FUNCTIONS, "cube", dataclasses.replace(functions.FUNCTIONS["cube"], impl=broken))
    members = [(SEEDS["backprop"], FAST), ("scale_10(gh)", FAST.with_(seed=1)),   # diverges in epoch 4
               ("left(cube(g), g)", FAST.with_(seed=2)), (SEEDS["fa"], FAST.with_(seed=3, hurdle_epoch=2,
                                                                                    hurdle_acc=1.0)),
               ("left(nrom_fro(g), g)", FAST.with_(seed=4)), (SEEDS["dfa"], FAST.with_(seed=5))]
    many, ones = evaluate_many(members), [evaluate(text, task) for text, task in members]
    assert [r.status for r in many] == ["ok", "diverged", "error", "hurdle", "error", "ok"]
    for got, want in zip(many, ones):
        assert (got.status, got.message, got.steps, len(got.val_curve)) == \
               (want.status, want.message, want.steps, len(want.val_curve))


def test_screening_hurdles_stop_members_as_evaluate_stops_them():
    members = [(SEEDS["backprop"], FAST.with_(hurdles=((2, 0.5), (4, 0.8)))),
               (SEEDS["fa"], FAST.with_(seed=1, hurdles=((2, 0.99),))), (SEEDS["dfa"], FAST.with_(seed=2))]
    many, ones = evaluate_many(members), [evaluate(text, task) for text, task in members]
    assert [(r.status, r.message, len(r.val_curve)) for r in many] == \
           [(r.status, r.message, len(r.val_curve)) for r in ones]
    assert many[1].status == "hurdle" and len(many[1].val_curve) == 2


def test_divergence_factors_stop_members_as_evaluate_stops_them():
    task = TaskSpec(dataset="mnist1d", lr=0.8, epochs=2, diverge_step=4.0, diverge_epoch=1.05).with_(
        model_widths=(100, 100))
    members = [(SEEDS["backprop_fro"], task), (SEEDS["backprop_fro"], task.with_(lr=0.4)),
               (SEEDS["backprop"], task), (SEEDS["backprop_fro"], task.with_(lr=0.1, seed=3))]
    many, ones = evaluate_many(members), [evaluate(text, task) for text, task in members]
    assert [r.status for r in many] == ["diverged", "diverged", "ok", "ok"]
    assert [(r.status, r.message, r.steps, len(r.loss_curve)) for r in many] == \
           [(r.status, r.message, r.steps, len(r.loss_curve)) for r in ones]


def test_on_result_reports_each_member_once_as_soon_as_it_ends():
    members = [(SEEDS["backprop"], FAST), ("scale_10(gh)", FAST.with_(seed=1)),     # diverges in epoch 4
               ("left(nrom_fro(g), g)", FAST.with_(seed=2)), (SEEDS["fa"], FAST.with_(seed=3, hurdle_epoch=2,
                                                                                      hurdle_acc=1.0))]
    heard = []
    results = evaluate_many(members, on_result=lambda i, r: heard.append((i, r)))
    assert sorted(i for i, _ in heard) == [0, 1, 2, 3]
    assert dict(heard) == dict(enumerate(results))
    assert [i for i, _ in heard][:3] == [2, 3, 1]   # the error at once, the hurdle at epoch 2, the NaN in epoch 4


def test_a_member_that_leaves_the_batch_leaves_the_others_bit_identical():
    healthy = [(SEEDS["backprop"], FAST), (RUNNING_RULE, FAST.with_(seed=2)), (SEEDS["fa"], FAST.with_(seed=3))]
    diverging = ("scale_10(gh)", FAST.with_(seed=1))
    hurdling = (SEEDS["dfa"], FAST.with_(seed=4, hurdle_epoch=2, hurdle_acc=1.0))
    alone = evaluate_many(healthy)
    mixed = evaluate_many([healthy[0], diverging, healthy[1], hurdling, healthy[2]])
    assert [r.status for r in mixed] == ["ok", "diverged", "ok", "hurdle", "ok"]
    assert [strip_time(r) for r in (mixed[0], mixed[2], mixed[4])] == [strip_time(r) for r in alone]


def test_a_member_that_leaves_a_one_equation_batch_leaves_the_others_bit_identical():
    text = "scale_10(gh)"   # diverges in epoch 4 at lr 0.1, trains at lr 0.02
    healthy = [(text, FAST.with_(seed=0, lr=0.02)), (text, FAST.with_(seed=2, lr=0.01))]
    mixed = evaluate_many([healthy[0], (text, FAST.with_(seed=1)), healthy[1]])
    assert [r.status for r in mixed] == ["ok", "diverged", "ok"]
    assert [strip_time(r) for r in (mixed[0], mixed[2])] == [strip_time(r) for r in evaluate_many(healthy)]


def test_a_members_result_does_not_depend_on_its_batch_nor_on_having_one():
    member = (NOISE_RULE, FAST.with_(seed=7, lr=0.05))
    a = evaluate_many([(SEEDS["fa"], FAST), member, (None, FAST.with_(seed=1))])[1]
    b = evaluate_many([member, (RUNNING_RULE, FAST.with_(seed=3, lr=0.2))])[0]
    c = evaluate_many([(SEEDS["dfa"], FAST.with_(seed=9)), (None, FAST.with_(seed=8)), member])[2]
    alone = evaluate_many([member])[0]   # a chunk of one: a resumed search retrains its in-flight members so
    assert strip_time(a) == strip_time(b) == strip_time(c) == strip_time(alone)


# The search's task (MNIST-1D, MLP 100-100), shorter: where the two cases below gave other bits before they were fixed.
MNIST1D = TaskSpec(dataset="mnist1d", lr=0.2).with_(model_widths=(100, 100))


@pytest.mark.parametrize("rule", [RUNNING_RULE, SEEDS["dfa"], "mm(norm_1(bn(bL)), abs(RL))"])   # the last two: bL
def test_a_member_left_alone_by_the_others_ending_first_keeps_its_bits(rule):
    # A resumed search retrains a candidate's members in other chunks than before, where other members end early or
    # do not: a member that trains on alone once the others stop must give the bits it gets anywhere else.
    task = MNIST1D.with_(epochs=2)
    member = (rule, task.with_(seed=7, lr=0.05))
    stop = task.with_(hurdles=((1, 1.0),))
    survivor = evaluate_many([(SEEDS["fa"], stop.with_(seed=1)), member, (None, stop.with_(seed=2))])
    assert [r.status for r in survivor] == ["hurdle", "ok", "hurdle"]
    assert strip_time(survivor[1]) == strip_time(evaluate_many([member])[0])


def test_a_members_validation_loss_does_not_depend_on_the_batch_size():
    # The evaluation's rows per member depend on K; each sample's loss must not (the loss breaks fitness ties).
    task = MNIST1D.with_(epochs=5)
    member = (None, task)
    three = evaluate_many([(SEEDS["fa"], task.with_(seed=1)), member, (SEEDS["fa"], task.with_(seed=2))])
    assert strip_time(three[1]) == strip_time(evaluate_many([member])[0])


def test_mean_accuracy_over_20_seeds_matches_evaluate():
    task = TaskSpec(epochs=4).with_(model_widths=(32, 32))
    members = [(SEEDS["fa"] if seed % 2 else None, task.with_(seed=seed)) for seed in range(20)]
    batched = evaluate_many(members)
    single = [evaluate(text, t) for text, t in members]
    many = statistics.mean(r.val_acc for r in batched)
    ones = statistics.mean(r.val_acc for r in single)
    assert abs(many - ones) <= 0.005, (many, ones)
    # The final validation loss (the search's tie-break) is measured the same way.
    loss_many = statistics.mean(r.val_loss for r in batched)
    loss_ones = statistics.mean(r.val_loss for r in single)
    assert loss_ones > 0 and abs(loss_many - loss_ones) <= 0.02 * loss_ones, (loss_many, loss_ones)


def test_auto_batch_sizes_stay_within_the_memory_budget(monkeypatch):
    per_member = member_bytes(torch.nn.Linear(4, 4), (4,), batch_size=8, train_bytes=0)
    for n, budget in ((10, 3 * per_member + 1), (7, 2 * per_member), (5, per_member // 2), (100, 10 ** 12)):
        sizes = group_sizes(n, per_member, budget)
        assert sum(sizes) == n and max(sizes) - min(sizes) <= 1
        assert max(sizes) * per_member <= budget or max(sizes) == 1
    # evaluate_many picks its groups by the same rule: with room for 3 members, 7 members train 3 + 2 + 2.
    merged = []
    merge = population.merge
    monkeypatch.setattr(population, "merge", lambda models: merged.append(len(models)) or merge(models))
    probe = population._build(None, DIGITS, population._splits("digits", None, 0, "cpu"))
    one = member_bytes(probe, (64,), DIGITS.batch_size, 1078 * 64 * 4)
    monkeypatch.setattr(population, "memory_budget", lambda device: 3 * one)
    results = evaluate_many([(None, DIGITS.with_(seed=s)) for s in range(7)])
    assert merged == [3, 2, 2] and all(r.status == "ok" for r in results)
    merged.clear()
    evaluate_many([(None, DIGITS.with_(seed=s)) for s in range(7)], batch=4)
    assert merged == [4, 3]


def test_members_must_share_data_model_and_budget():
    with pytest.raises(TaskError, match="must share dataset.*member 1"):
        evaluate_many([(None, DIGITS), (None, DIGITS.with_(dataset="synthetic"))])
    with pytest.raises(TaskError, match="must share model"):
        evaluate_many([(None, DIGITS), (None, DIGITS.with_(model_widths=(8,)))])
    with pytest.raises(TaskError, match="batch must be 'auto' or a positive integer"):
        evaluate_many([(None, DIGITS)], batch=0)
    assert evaluate_many([]) == []


def test_no_trained_model_outlives_its_training():
    # A rule's hooks sit in the last step's autograd graph, which the links held: a cycle through C++ that kept every
    # trained model alive, and a worker's memory grew by a model per training until loky restarted it.
    import gc
    from evaluators.rule_link import Link

    def live() -> int:
        gc.collect()
        return sum(isinstance(o, Link) for o in gc.get_objects())
    before = live()
    evaluate("add(g, mhat(b_next))", DIGITS)
    evaluate_many([("add(g, mhat(b_next))", DIGITS), (SEEDS["fa"], DIGITS.with_(seed=1)), (None, DIGITS)])
    evaluate_many([("add(g, mhat(gh))", DIGITS)])
    assert live() == before
