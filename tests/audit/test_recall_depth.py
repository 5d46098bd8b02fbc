"""Recall classes of issue 17 fixed in the dataflow and ordering analysis (second session), each with a legal twin.

Minimal programs written for these tests with the structure of the leaky PRs (never their code): the two-pass
rescore whose scorer is a helper called twice (#846), the full rescore over a cache filled from all of val
(#870, #881), and a multi-epoch TTT whose switch is off by default but whose logs show it ran (#713, #525)."""

from __future__ import annotations

from pathlib import Path

from golfc.audit.findings import Severity
from golfc.audit.folder import audit_folder
from golfc.audit.static import check_source


def found(source: str) -> list[tuple[str, Severity]]:
    return [(f.rule, f.severity) for f in check_source(source).findings]


def fails(source: str) -> set[str]:
    return {f.rule for f in check_source(source).findings if f.severity == Severity.FAIL}


# -- L5: a scoring helper called twice over the same tokens, the second pass replacing chunk scores -------------
HELPER_TWICE = """
import math, torch

def score_chunks(model, val_tokens, spans, table, grow=True):
    out = []
    with torch.inference_mode():
        for lo, hi in spans:
            x = val_tokens[lo:hi]
            p = torch.softmax(model(x[:-1]), -1).gather(-1, x[1:, None]).squeeze(-1)
            p = 0.9 * p + 0.1 * table.prob(x)
            chunk_loss = 0.0
            chunk_loss += float(-p.log().sum())
            out.append((chunk_loss, float(hi - lo)))
            if grow:
                table.add(x)
    return out

def eval_cached(model, val_tokens, table, redo=4):
    spans = [(i, i + 256) for i in range(0, val_tokens.numel() - 256, 256)]
    first = score_chunks(model, val_tokens, spans, table)
    total = sum(r[0] for r in first)
    count = sum(r[1] for r in first)
    COMBINE
    return total / count / math.log(2.0)

print(eval_cached(None, torch.load("fineweb_val_000000.bin"), None))
"""

RESCORE = """second = score_chunks(model, val_tokens, spans[:redo], table, grow=False)
    for i in range(redo):
        total = total - first[i][0] + second[i][0]"""

SIDE_BY_SIDE = """second = score_chunks(model, val_tokens, spans[:redo], table, grow=False)
    print("cold chunks again", sum(r[0] for r in second) / sum(r[1] for r in second))"""


def test_a_second_call_of_the_scorer_that_replaces_chunk_scores_is_l5() -> None:
    assert "L5" in fails(HELPER_TWICE.replace("COMBINE", RESCORE))


def test_a_second_scoring_only_logged_beside_the_first_is_not_l5() -> None:
    assert "L5" not in fails(HELPER_TWICE.replace("COMBINE", SIDE_BY_SIDE))


# -- L5: per-token probabilities stored, a cache filled from every validation token, then a blend -----------------
FULL_CACHE = """
import numpy as np, torch

class Counts:
    def __init__(self, buckets=1 << 16):
        self.ctx = np.zeros(buckets, dtype=np.int64)
        self.pair = np.zeros(buckets, dtype=np.int64)
    def _keys(self, toks, lo, hi):
        h = toks[lo - 1:hi - 1] * 1000003
        return h % len(self.ctx), (h ^ toks[lo:hi]) % len(self.ctx)
    def fill(self, toks, lo=1, hi=None):
        c, p = self._keys(toks, lo, len(toks) if hi is None else hi)
        np.add.at(self.ctx, c, 1)
        np.add.at(self.pair, p, 1)
    def prob(self, toks, lo, hi):
        c, p = self._keys(toks, lo, hi)
        return self.pair[p] / np.maximum(self.ctx[c], 1)

def neural_pass(model, val_tokens):
    probs = []
    with torch.no_grad():
        for lo in range(0, val_tokens.numel() - 1024, 1024):
            x = val_tokens[lo:lo + 1025]
            probs.append(torch.softmax(model(x[:-1]), -1).gather(-1, x[1:, None]).squeeze(-1))
    return torch.cat(probs).numpy()

def blend(model_p, table, toks):
    p = 0.8 * model_p + 0.2 * table.prob(toks, 1, len(model_p) + 1)
    nll = -np.log(p)
    return nll.sum() / len(nll)

def eval_blend(model, val_tokens):
    model_p = neural_pass(model, val_tokens)
    toks = val_tokens.numpy()
    table = Counts()
    BUILD
    return loss

print(eval_blend(None, torch.load("fineweb_val_000000.bin")))
"""

WHOLE = """table.fill(toks)
    loss = blend(model_p, table, toks)"""

CAUSAL = """total = 0.0
    for lo in range(1, len(model_p) + 1, 1024):
        hi = min(lo + 1024, len(model_p) + 1)
        p = 0.8 * model_p[lo - 1:hi - 1] + 0.2 * table.prob(toks, lo, hi)
        total += float(-np.log(p).sum())
        table.fill(toks, lo, hi)
    loss = total / len(model_p)"""


def test_a_cache_filled_from_all_of_val_before_the_blend_is_l5() -> None:
    findings = check_source(FULL_CACHE.replace("BUILD", WHOLE)).findings
    l5 = [f for f in findings if f.rule == "L5" and f.severity == Severity.FAIL]
    assert l5 and "table.fill(toks)" in l5[0].message


def test_a_cache_filled_chunk_by_chunk_after_scoring_is_not_l5() -> None:
    assert "L5" not in fails(FULL_CACHE.replace("BUILD", CAUSAL))


# -- liveness from the logs: a TTT branch off by default that the run's output shows ran -------------------------
MULTI_EPOCH = """
import os, torch

def lora_ttt(model, lora, opt, val_tokens, epochs=3, chunk=256):
    nll_sum = torch.zeros((), dtype=torch.float64)
    print(f"lora_ttt_multi: epochs={epochs} chunk={chunk}")
    for epoch in range(epochs):
        for ci in range(0, val_tokens.numel() - chunk, chunk):
            x = val_tokens[ci:ci + chunk + 1]
            loss = model(x[:-1], x[1:], lora)
            if epoch == epochs - 1:
                with torch.no_grad():
                    nll_sum += loss.detach().double() * chunk
            opt.zero_grad()
            loss.backward()
            opt.step()
    return nll_sum

def main():
    use_ttt = bool(int(os.environ.get("TTT_ENABLED", "0")))
    val_tokens = torch.load("fineweb_val_000000.bin")
    if use_ttt:
        print(lora_ttt(None, None, None, val_tokens))

if __name__ == "__main__":
    main()
"""


def _folder(tmp_path: Path, log: str) -> Path:
    (tmp_path / "train_gpt.py").write_text(MULTI_EPOCH, encoding="utf-8")
    (tmp_path / "train_seed1.log").write_text(log, encoding="utf-8")
    return tmp_path


def test_a_branch_off_by_default_that_the_log_shows_ran_is_judged(tmp_path: Path) -> None:
    log = "seed:1\nlora_ttt_multi: epochs=3 chunk=256\nfinal val_loss:1.9 val_bpb:1.1\n"
    rules = {(f.rule, f.severity) for f in audit_folder(_folder(tmp_path, log)).findings}
    assert ("L2", Severity.FAIL) in rules


def test_a_branch_off_by_default_without_log_evidence_stays_a_note(tmp_path: Path) -> None:
    log = "seed:1\nfinal val_loss:1.9 val_bpb:1.1\n"
    findings = audit_folder(_folder(tmp_path, log)).findings
    assert [f.severity for f in findings if f.rule == "L2"] == [Severity.INFO]


def test_log_lines_copied_from_the_source_are_no_evidence(tmp_path: Path) -> None:
    log = '    print(f"lora_ttt_multi: epochs={epochs} chunk={chunk}")\nfinal val_loss:1.9 val_bpb:1.1\n'
    findings = audit_folder(_folder(tmp_path, log)).findings
    assert all(f.severity < Severity.FAIL for f in findings if f.rule == "L2")


# -- L3: a whole-val diagnostic evaluation, then training on val, then the artifact is quantized (#1487) ----------
DIAGNOSTIC_THEN_ADAPT = """
import torch

def evaluate(model, val_tokens):
    with torch.no_grad():
        nll_sum = 0.0
        for i in range(0, val_tokens.numel() - 1024, 1024):
            nll_sum += float(model(val_tokens[i:i + 1024], val_tokens[i + 1:i + 1025]))
    return nll_sum

def adapt(model, val_tokens, epochs=4):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for _ in range(epochs):
        for i in range(0, val_tokens.numel() - 1024, 1024):
            opt.zero_grad()
            model(val_tokens[i:i + 1024], val_tokens[i + 1:i + 1025]).backward()
            opt.step()

def quantize_and_save(model):
    torch.save({k: v.half() for k, v in model.state_dict().items()}, "final_model.pt")

def run(model):
    val_tokens = torch.load("fineweb_val_000000.bin")
    print(evaluate(model, val_tokens))
    AFTER

run(None)
"""


def test_training_on_val_after_a_diagnostic_eval_and_before_quantizing_is_l3() -> None:
    source = DIAGNOSTIC_THEN_ADAPT.replace("AFTER", "adapt(model, val_tokens)\n    quantize_and_save(model)")
    assert "L3" in fails(source)


def test_a_diagnostic_eval_then_quantizing_without_training_on_val_is_clean() -> None:
    source = DIAGNOSTIC_THEN_ADAPT.replace("AFTER", "quantize_and_save(model)")
    assert not fails(source) & {"L1", "L2", "L3"}


# -- L19: GPTQ calibrated on the training shards after a training loop that ran to the wall-clock cap ------------
CALIBRATE_AFTER_LOOP = """
import os, time, torch

TRAIN_FILES = os.environ.get("TRAIN_FILES", "./data/fineweb_train_*.bin")
MAX_WALLCLOCK_SECONDS = float(os.environ.get("MAX_WALLCLOCK_SECONDS", "600"))

class Loader:
    def __init__(self, pattern):
        self.pattern = pattern
    def next_batch(self):
        return torch.zeros(8, 1024, dtype=torch.long)

def collect_hessians(model, loader, batches=64):
    hessians = {}
    for _ in range(batches):
        x = loader.next_batch()
        hessians["x"] = x.float().T @ x.float()
    return hessians

def main(model, opt):
    loader = Loader(TRAIN_FILES)
    start = time.perf_counter()
    step = 0
    while time.perf_counter() - start < MAX_WALLCLOCK_SECONDS:
        model(loader.next_batch()).backward()
        opt.step()
        step += 1
    print(f"stopping_early: wallclock_cap train_time:{1000 * (time.perf_counter() - start):.0f}ms step:{step}")
    calib_loader = Loader(TRAIN_FILES)
    hessians = collect_hessians(model, calib_loader)
    torch.save(hessians, "final_model.pt")

if __name__ == "__main__":
    main(None, None)
"""


def _calibration_folder(tmp_path: Path, train_ms: int) -> Path:
    (tmp_path / "train_gpt.py").write_text(CALIBRATE_AFTER_LOOP, encoding="utf-8")
    log = (
        "seed:1\n"
        f"step:7000/9000 val_loss:1.9 val_bpb:1.13 train_time:{train_ms}ms step_avg:85.0ms\n"
        f"stopping_early: wallclock_cap train_time:{train_ms}ms step:7000/9000\n"
        "final_int6_roundtrip val_loss:1.91 val_bpb:1.131\n"
    )
    (tmp_path / "train_seed1.log").write_text(log, encoding="utf-8")
    return tmp_path


def test_calibrating_on_train_data_after_a_loop_that_used_the_whole_600_s_is_l19(tmp_path: Path) -> None:
    findings = audit_folder(_calibration_folder(tmp_path, 600_050)).findings
    l19 = [f for f in findings if f.rule == "L19" and f.severity == Severity.FAIL]
    assert l19 and "collect_hessians" in l19[0].message and l19[0].line is not None


def test_calibrating_inside_a_reserved_budget_is_not_l19(tmp_path: Path) -> None:
    findings = audit_folder(_calibration_folder(tmp_path, 588_000)).findings
    assert not [f for f in findings if f.rule == "L19" and f.severity == Severity.FAIL]


# -- L7: the target named by its index, tokens[pos] beside a context of tokens[pos - k] (#797, #776) ------------
POSITIONAL = """
import numpy as np, torch

PRIMES = np.array([36313, 27191, 51647, 81929], dtype=np.uint64)

def hash_keys(tokens, pos, order, mask):
    h = np.zeros(pos.size, dtype=np.uint64)
    for k in range(order - 1):
        h ^= tokens[pos - (order - 1 - k)].astype(np.uint64) * PRIMES[k]
    ctx_key = (h & mask).astype(np.int64)
    SECOND
    return ctx_key, second_key

def eval_cached(model_p, val_tokens, order=4, buckets=1 << 20):
    toks = val_tokens.numpy()
    ctx_counts = np.zeros(buckets, dtype=np.int64)
    pair_counts = np.zeros(buckets * 1024 if TWO_D else buckets, dtype=np.int64)
    nll = 0.0
    mask = np.uint64(buckets - 1)
    for lo in range(order, len(toks) - 256, 256):
        pos = np.arange(lo, lo + 256)
        ck, sk = hash_keys(toks, pos, order, mask)
        c = ctx_counts[ck].astype(np.float64)
        f = LOOKUP
        p = 0.9 * model_p[pos] + 0.1 * f / np.maximum(c, 1.0)
        nll += float(-np.log(p).sum())
        np.add.at(ctx_counts, ck, 1)
        np.add.at(pair_counts, sk, 1)
    return nll

print(eval_cached(np.ones(10), torch.load("fineweb_val_000000.bin")))
"""

TARGET_KEY = "second_key = ((h ^ (tokens[pos].astype(np.uint64) * PRIMES[0])) & mask).astype(np.int64)"
ROW_KEY = "second_key = ctx_key * 1024 + tokens[pos].astype(np.int64)"


def test_a_helper_hashing_the_token_at_the_predicted_position_into_the_full_key_is_l7() -> None:
    source = POSITIONAL.replace("SECOND", TARGET_KEY).replace("TWO_D", "False").replace("LOOKUP", "pair_counts[sk]")
    assert "L7" in fails(source)


def test_the_same_helper_storing_a_row_per_context_read_at_the_gold_column_is_not_l7() -> None:
    source = POSITIONAL.replace("SECOND", ROW_KEY).replace("TWO_D", "True")
    source = source.replace("LOOKUP", "pair_counts.reshape(-1, 1024)[ck, toks[pos]]")
    assert "L7" not in fails(source)


# -- L9: a table filled from the training shards and used when scoring validation tokens (#925, #982) ------------
TRAIN_TABLE = """
import glob, numpy as np, torch

TRAIN_FILES = "./data/fineweb_train_*.bin"

class Counts:
    def __init__(self, buckets=1 << 16):
        self.ctx = np.zeros(buckets, dtype=np.int64)
        self.rows = np.zeros((buckets, 1024), dtype=np.int64)
    def update(self, toks):
        keys = (toks[:-1] * 1000003) % len(self.ctx)
        np.add.at(self.ctx, keys, 1)
        np.add.at(self.rows, (keys, toks[1:]), 1)
    def prob(self, toks):
        keys = (toks[:-1] * 1000003) % len(self.ctx)
        return self.rows[keys, toks[1:]] / np.maximum(self.ctx[keys], 1)
    def serialize(self):
        return self.rows.tobytes()
    @classmethod
    def deserialize(cls, blob):
        table = cls()
        table.rows = np.frombuffer(blob, dtype=np.int64).reshape(-1, 1024)
        return table

def eval_mixed(model, val_tokens, table):
    nll = 0.0
    with torch.no_grad():
        for lo in range(0, val_tokens.numel() - 1024, 1024):
            x = val_tokens[lo:lo + 1025]
            p = 0.9 * torch.softmax(model(x[:-1]), -1).gather(-1, x[1:, None]).squeeze(-1).numpy()
            p = p + 0.1 * table.prob(x.numpy())
            nll += float(-np.log(p).sum())
    return nll

def main(model):
    table = Counts()
    for shard in sorted(glob.glob(TRAIN_FILES)):
        chunk = np.fromfile(shard, dtype=np.uint16).astype(np.int64)
        table.update(chunk)
    val_tokens = torch.load("fineweb_val_000000.bin")
    AFTER

if __name__ == "__main__":
    main(None)
"""

UNPAID = "print(eval_mixed(model, val_tokens, table))"
PAID = """torch.save({"model": model.state_dict(), "table": table.serialize()}, "final_model.pt")
    loaded = Counts.deserialize(torch.load("final_model.pt")["table"])
    print(eval_mixed(model, val_tokens, loaded))"""


def test_a_training_table_handed_to_the_scorer_without_being_saved_is_l9() -> None:
    assert "L9" in fails(TRAIN_TABLE.replace("AFTER", UNPAID))


def test_a_normalized_training_table_shipped_in_the_artifact_is_not_l9() -> None:
    assert "L9" not in fails(TRAIN_TABLE.replace("AFTER", PAID))


def test_a_shipped_training_table_looked_up_with_the_target_in_its_key_is_l9() -> None:
    leaky = TRAIN_TABLE.replace(
        "return self.rows[keys, toks[1:]] / np.maximum(self.ctx[keys], 1)",
        "return self.ctx[(keys ^ toks[1:] * 7919) % len(self.ctx)] / np.maximum(self.ctx[keys], 1)",
    ).replace("def prob(self, toks):", "def prob(self, toks, y=None):")
    leaky = leaky.replace("toks[1:] * 7919", "y * 7919").replace(
        "table.prob(x.numpy())", "table.prob(x.numpy(), x[1:].numpy())"
    )
    assert "L9" in fails(leaky.replace("AFTER", PAID))


# -- L6: a per-token score overwritten with a candidate's loss when that is lower (#659) --------------------------
REPLACE_IF_LOWER = """
import math, torch

def eval_mixed(model, cache, val_tokens):
    total = 0.0
    best_bpb = 9.0
    with torch.no_grad():
        for lo in range(0, val_tokens.numel() - 1024, 1024):
            x, y = val_tokens[lo:lo + 1024], val_tokens[lo + 1:lo + 1025]
            nll = torch.nn.functional.cross_entropy(model(x), y, reduction="none")
            for t in range(nll.numel()):
                cand_nll = -math.log(0.5 * math.exp(-nll[t].item()) + 0.5 * cache.prob(x[: t + 1], y[t]))
                BODY
            total += nll.sum().item()
            if total < best_bpb:
                best_bpb = total
    return total

print(eval_mixed(None, None, torch.load("fineweb_val_000000.bin")))
"""


def test_overwriting_a_token_score_with_a_lower_candidate_loss_is_l6() -> None:
    source = REPLACE_IF_LOWER.replace("BODY", "if cand_nll < nll[t].item():\n                    nll[t] = cand_nll")
    assert "L6" in fails(source)


def test_a_mixture_always_used_and_a_best_so_far_are_not_l6() -> None:
    assert "L6" not in fails(REPLACE_IF_LOWER.replace("BODY", "nll[t] = cand_nll"))


# -- L12: the delta fitted under a mask written over the scored slice; L5: one of two exclusive branches runs ------
MASKED_SLOT = """
import torch

def eval_val_sliding(model, val_tokens, steps=8, stride=64, seq=1024):
    loss_sum = torch.zeros((), dtype=torch.float64)
    starts = list(range(0, val_tokens.numel() - seq, stride))
    if steps > 0:
        for bi in range(0, len(starts), 16):
            ws = starts[bi:bi + 16]
            x = torch.stack([val_tokens[w:w + seq] for w in ws])
            y = torch.stack([val_tokens[w + 1:w + seq + 1] for w in ws])
            with torch.no_grad():
                hidden = model.hidden(x)
            mask = torch.zeros(len(ws), seq)
            for i, w in enumerate(ws):
                s = 0 if w == 0 else seq - stride
                mask[i, MASKED] = 1.0
            delta = torch.zeros(len(ws), 1, hidden.size(-1), requires_grad=True)
            opt = torch.optim.AdamW([delta], lr=1e-2)
            for _ in range(steps):
                nll = torch.nn.functional.cross_entropy(model.head(hidden + delta).transpose(1, 2), y, reduction="none")
                opt.zero_grad()
                ((nll * mask).sum() / mask.sum()).backward()
                opt.step()
            with torch.no_grad():
                nll = torch.nn.functional.cross_entropy(model.head(hidden + delta).transpose(1, 2), y, reduction="none")
            for i, w in enumerate(ws):
                s = 0 if w == 0 else seq - stride
                loss_sum += nll[i, s:seq].sum()
    else:
        with torch.inference_mode():
            for bi in range(0, len(starts), 16):
                ws = starts[bi:bi + 16]
                x = torch.stack([val_tokens[w:w + seq] for w in ws])
                y = torch.stack([val_tokens[w + 1:w + seq + 1] for w in ws])
                nll = torch.nn.functional.cross_entropy(model(x).transpose(1, 2), y, reduction="none")
                for i, w in enumerate(ws):
                    s = 0 if w == 0 else seq - stride
                    loss_sum += nll[i, s:seq].sum()
    return loss_sum

print(eval_val_sliding(None, torch.load("fineweb_val_000000.bin")))
"""


def test_a_delta_fitted_under_a_mask_of_the_scored_slice_is_l12_and_exclusive_branches_are_not_l5() -> None:
    rules = fails(MASKED_SLOT.replace("MASKED", "s:seq"))
    assert "L12" in rules and "L5" not in rules


def test_a_delta_fitted_under_a_mask_of_the_context_slice_is_not_l12() -> None:
    assert "L12" not in fails(MASKED_SLOT.replace("MASKED", ":s"))


# -- L18: a previous-token mix written inline in a forward, with document-isolated attention (#1797) ------------
INLINE_SMEAR = """
import torch
from flash_attn import flash_attn_varlen_func

class Net(torch.nn.Module):
    def forward(self, input_ids, cu_seqlens):
        x = self.tok_emb(input_ids)
        g = torch.sigmoid(self.gate(x[:, 1:, :12]))
        MASK
        x = torch.cat([x[:, :1], x[:, 1:] + g * x[:, :-1]], dim=1)
        return flash_attn_varlen_func(x, x, x, cu_seqlens, cu_seqlens)

net = Net()
print(net(torch.zeros(1, 8, dtype=torch.long), torch.tensor([0, 8])))
"""


def test_an_inline_previous_token_mix_without_a_bos_mask_under_varlen_attention_is_an_l18_warn() -> None:
    # a WARN, not a FAIL: a merged record on main (2026-04-16 SmearGate + score-first TTT) has this shape
    assert ("L18", Severity.WARN) in found(INLINE_SMEAR.replace("MASK", "pass"))
    assert "L18" not in fails(INLINE_SMEAR.replace("MASK", "pass"))


def test_an_inline_previous_token_mix_masked_at_bos_is_not_l18() -> None:
    assert "L18" not in dict(found(INLINE_SMEAR.replace("MASK", "g = g * (input_ids[:, 1:] != BOS_ID).unsqueeze(-1)")))
