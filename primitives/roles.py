"""Shape roles: the DEAP types of the backward-equation DSL.

A value's role fixes its shape relative to the searched layer i, so every well-typed tree is shape-feasible by
construction. Only the matrix products (``mm``) and the transpose (``T``) move a value from one role to another.
"""
from __future__ import annotations


class Role:
    """Base class of the shape roles; never used as a DEAP type itself."""

    doc = ""


class Layer(Role):
    doc = "batch-shaped like layer i's pre-activation: (N, d_i) dense or (N, C_i, H_i, W_i) conv"


class Next(Role):
    doc = "batch-shaped like layer i+1's pre-activation: (N, d_{i+1}) or (N, C_{i+1}, H, W)"


class Out(Role):
    doc = "batch-shaped like the output layer's pre-activation (the logits): (N, d_L)"


class Weight(Role):
    doc = "the matrix between layers i and i+1 in the paper's orientation: (d_i, d_{i+1}), conv (C_i, C_{i+1}, k, k)"


class WeightT(Role):
    doc = "transpose of a Weight: (d_{i+1}, d_i), conv (C_{i+1}, C_i, k, k) = PyTorch's layout of layer i+1's weight"


class Feedback(Role):
    doc = "direct-feedback matrix from the output to layer i: (d_L, D_i), D_i = d_i or C_i*H_i*W_i"


class FeedbackT(Role):
    doc = "transpose of a Feedback matrix: (D_i, d_L)"


ROLES: tuple[type[Role], ...] = (Layer, Next, Out, Weight, WeightT, Feedback, FeedbackT)
BATCH_ROLES: tuple[type[Role], ...] = (Layer, Next, Out)
TRANSPOSE: dict[type[Role], type[Role]] = {Weight: WeightT, WeightT: Weight, Feedback: FeedbackT, FeedbackT: Feedback}
# The four matrix products: (left role, right role) -> result role. The first is the one backprop uses.
PRODUCTS: dict[tuple[type[Role], type[Role]], type[Role]] = {
    (Next, WeightT): Layer,   # b_next · W^t: down one layer (conv: transposed convolution)
    (Layer, Weight): Next,    # h · W: up one layer (conv: convolution)
    (Out, Feedback): Layer,   # bL · RL: straight from the output (DFA)
    (Layer, FeedbackT): Out,  # x · RL^t: straight to the output
}
