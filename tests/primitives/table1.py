"""Backprop Evolution's Table 1 equations (reference §4) in this DSL, shared by the primitives tests."""

# Strict paper form: f(u1(op1), u2(op2)), chained.
PAPER_FORM = {
    "A1 SGD 1: min(g/|.|fro, clip_1.0(h))": "min(norm_fro(g), clip_1.0(h))",
    "A1 SGD 2: (g/|.|row_2) + mhat(dact)/|.|elem_0": "add(norm_row_2(g), norm_elem_0(mhat(dact)))",
    "A1 SGD 2, other bracketing: ((g/|.|row_2) + mhat(dact))/|.|elem_0":
        "left(norm_elem_0(add(norm_row_2(g), mhat(dact))), g)",
    "A1-A3 g/|.|fro": "left(norm_fro(g), g)",
    "A1-A3 g/|.|elem_2": "left(norm_elem_2(g), g)",
    "A1 Mom 1: (g/|.|elem_2) / (2 + mhat((bL . RL) * dact))": "div(norm_elem_2(g), shift_2(mhat(dfa_dact)))",
    "A1 Mom 2: (g/|.|fro) + 0.5 g": "add(norm_fro(g), scale_0.5(g))",
    "A2 SGD 1: (g/|.|elem_inf) * (shat(dact)/|.|1)": "mul(norm_elem_inf(g), norm_1(shat(dact)))",
    # (0.01 + hp) - relu(hp) equals 0.01 + (hp - relu(hp)); read this way the equation is paper form.
    "A2 SGD 2: clip_0.01((0.01 + hp) - relu(hp)) * (g/|.|elem_inf)":
        "mul(clip_0.01(sub(shift_0.01(hp), relu(hp))), norm_elem_inf(g))",
    "A2 Mom 1: max(gh - 10.0, g/|.|elem_2)": "max(shift_-10.0(gh), norm_elem_2(g))",
    "A2 Mom 2: (gh - 0.01) + (g/|.|elem_2)": "add(shift_-0.01(gh), norm_elem_2(g))",
    "A3 SGD 1 = B1 SGD 3: (g/|.|elem_2) * sgn(bn(dact))": "mul(norm_elem_2(g), sgn(bn(dact)))",
    "A3 SGD 2: (g/|.|elem_2) - (mhat(gh)/|.|inf)": "sub(norm_elem_2(g), norm_inf(mhat(gh)))",
    "A3 Mom 1: drop_0.01(g) - (bn(bL . RL)/|.|elem_0)": "sub(drop_0.01(g), norm_elem_0(bn(dfa)))",
    "B1 SGD 1: (g/|.|1) + (gh/|.|elem_2)": "add(norm_1(g), norm_elem_2(gh))",
    "B1 SGD 1, other bracketing: ((g/|.|1) + gh)/|.|elem_2": "left(norm_elem_2(add(norm_1(g), gh)), g)",
    "B1 SGD 2: (g/|.|1) * clip_0.1(dact)": "mul(norm_1(g), clip_0.1(dact))",
    "B1 SGD 4: (0.5 g) / (shat(dact) + 0.1)": "div(scale_0.5(g), shift_0.1(shat(dact)))",
    "B1 Mom 1: 2g + (bn(gh)/|.|elem_1)": "add(scale_2(g), norm_elem_1(bn(gh)))",
    "B1 Mom 2: (dact - 0.5) * 2.0 g": "mul(shift_-0.5(dact), scale_2.0(g))",
    "B1 Mom 3: (shat(gh)/|.|elem_inf) * 2.0 g": "mul(norm_elem_inf(shat(gh)), scale_2.0(g))",
    "B1 Mom 4: relu(dact) * clip_1.0(gh)": "mul(relu(dact), clip_1.0(gh))",
}

# Free form: two unaries chained on one argument, as printed.
FREE_FORM = {
    "A2 SGD 2 as printed: clip_0.01(0.01 + (hp - relu(hp))) * (g/|.|elem_inf)":
        "mul(clip_0.01(shift_0.01(sub(hp, relu(hp)))), norm_elem_inf(g))",
}

# A3 Mom 2, "(1 + gnoise_0.01) g + (g p 1_b / |.|elem_1)": its second term is a typesetting artifact with no
# defined meaning (reference §4, footnote), so it is not transcribed.
SKIPPED = ("A3 Mom 2",)
