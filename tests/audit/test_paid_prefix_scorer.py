"""L21 from the scorer alone (issue 17, third session): the loss zeroed where the target matches a sequence the
submission carries (the paid prefix of #168, whose blob the mirror lacks), with legal twins. Minimal programs
written for these tests."""

from __future__ import annotations

from golfc.audit.findings import Severity
from golfc.audit.static import check_source

FREE_MATCHES = """
import lzma, os
import numpy as np
import torch
import torch.nn.functional as F

def load_blob(path):
    if not path:
        return None
    return torch.from_numpy(np.frombuffer(lzma.decompress(open(path, "rb").read()), dtype="<u2").astype(np.int64))

def eval_val(model, val_tokens, blob, seq_len=8):
    total = torch.zeros((), dtype=torch.float64)
    covered = blob.numel() if blob is not None else 0
    with torch.inference_mode():
        for start in range(0, val_tokens.numel() - 1 - seq_len, seq_len):
            chunk = val_tokens[start : start + seq_len + 1]
            x, y = chunk[:-1], chunk[1:]
            per_token_loss = F.cross_entropy(model(x), y, reduction="none")
            if start < covered:
                end = min(covered, start + y.numel())
                known = blob[start:end]
                hit = known == y[: end - start]
                per_token_loss[: end - start] *= (~hit).float()
            total += per_token_loss.sum()
    return float(total)

if __name__ == "__main__":
    print(eval_val(torch.nn.Embedding(16, 16), torch.arange(40) % 16, load_blob(os.environ.get("BLOB", ""))))
"""


def l21(source: str) -> list[Severity]:
    return [f.severity for f in check_source(source).findings if f.rule == "L21"]


def test_loss_zeroed_where_a_carried_sequence_matches_the_target():
    assert l21(FREE_MATCHES) == [Severity.FAIL]
    zeroed = FREE_MATCHES.replace("per_token_loss[: end - start] *= (~hit).float()", "per_token_loss[hit] = 0")
    assert l21(zeroed) == [Severity.FAIL]


def test_model_prediction_input_and_constant_matches_are_legal():
    accuracy = FREE_MATCHES.replace("known == y[: end - start]", "model(x).argmax(-1)[: end - start] == y[: end - start]")
    assert l21(accuracy) == []
    repeat = FREE_MATCHES.replace("known == y[: end - start]", "x[: end - start] == y[: end - start]")
    assert l21(repeat) == []
    padding = FREE_MATCHES.replace("known == y[: end - start]", "y[: end - start] == 0")
    assert l21(padding) == []
