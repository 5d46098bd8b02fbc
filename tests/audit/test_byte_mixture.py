"""L14 in the log domain (issue 17, third session): a token's log-probability spread over its bytes
(``lp / n_bytes``) and mixed per byte with a byte-level model (the #1785 shape), with legal twins. Minimal
programs written for these tests."""

from __future__ import annotations

import numpy as np

from golfc.audit.findings import Severity
from golfc.audit.static import check_source

PER_BYTE_MIX = """
import numpy as np

def byte_model_logprobs(stream):
    return np.log(np.full(len(stream), 1 / 256))

def mixed_bpb(token_lp, token_lens, stream, lam=0.9):
    rep_lp = np.repeat(token_lp, token_lens)
    rep_len = np.repeat(token_lens, token_lens).astype(np.float64)
    nn_lp = rep_lp / rep_len
    byte_lp = byte_model_logprobs(stream)
    p = lam * np.exp(nn_lp) + (1 - lam) * np.exp(byte_lp)
    return float(-np.log2(p).sum() / len(stream))

if __name__ == "__main__":
    print(mixed_bpb(np.log(np.array([0.5, 0.25])), np.array([2, 1]), b"abc"))
"""

# Token-level mixture of two token distributions: legal (each term is a distribution over the vocabulary).
TOKEN_MIX = PER_BYTE_MIX.replace("nn_lp = rep_lp / rep_len", "nn_lp = rep_lp")

# The BPB formula divides a loss by a byte count, but mixes nothing.
BPB_ONLY = """
import math

def bpb(loss_sum, token_count, byte_count):
    return loss_sum / math.log(2.0) / byte_count

if __name__ == "__main__":
    print(bpb(10.0, 4, 12))
"""


def l14(source: str) -> list[Severity]:
    return [f.severity for f in check_source(source).findings if f.rule == "L14"]


def test_log_domain_spread_mixed_per_byte_fails():
    assert l14(PER_BYTE_MIX) == [Severity.FAIL]


def test_token_level_mixture_and_bpb_formula_are_legal():
    assert l14(TOKEN_MIX) == []
    assert l14(BPB_ONLY) == []


def test_the_fixture_is_not_a_token_distribution():
    """What the rule stands for: the per-byte mixture, multiplied back per token, does not sum to 1 over a toy
    vocabulary of two one-byte tokens and one two-byte token (the NN's distribution does)."""
    nn = np.array([0.5, 0.3, 0.2])  # tokens "a", "b", "ab"
    byte_p = {b"a"[0]: 0.6, b"b"[0]: 0.4}
    lam = 0.5

    def mix(byte: int, lp: float, n: int) -> float:
        return lam * np.exp(lp / n) + (1 - lam) * byte_p[byte]

    total = mix(b"a"[0], np.log(nn[0]), 1) + mix(b"b"[0], np.log(nn[1]), 1)
    total += mix(b"a"[0], np.log(nn[2]), 2) * mix(b"b"[0], np.log(nn[2]), 2)
    assert abs(nn.sum() - 1) < 1e-12 and abs(total - 1) > 0.05
