"""Named seed equations: the rules the search can start from (reference §5 and ftprop.md §1.6, §5)."""
from __future__ import annotations

SEEDS: dict[str, str] = {
    # Gradient backprop: keep g. The explicit chain is the same function, with W exposed to mutation.
    "backprop": "left(g, g)",
    "backprop_chain": "mul(mm(b_next, T(W)), dact)",
    # Feedback alignment (Lillicrap et al. 2014): a fixed random R in W's place.
    "fa": "mul(mm(b_next, T(R)), dact)",
    # Direct feedback alignment (Nøkland 2016): the output error through a fixed random RL.
    "dfa": "mul(mm(bL, RL), dact)",
    # Sign symmetry: sgn(W) in W's place.
    "sign_symmetry": "mul(mm(b_next, T(sgnW)), dact)",
    # Normalised backprop, the paper's most robust finds (Table 1).
    "backprop_fro": "left(norm_fro(g), g)",
    "backprop_elem2": "left(norm_elem_2(g), g)",
    # FTPROP-MB (Friesen & Domingos 2018) on hard-threshold units; need make_pset(hard_threshold=True).
    "ftp_sh": "mul(gh, sech2(hp))",
    "sste": "mul(gh, win11(hp))",
    "ftp_sh_qrelu": "mul(gh, sech2_01(hp))",
    "sste_qrelu": "mul(gh, win01(hp))",
}
HARD_THRESHOLD_SEEDS = ("ftp_sh", "sste", "ftp_sh_qrelu", "sste_qrelu")
