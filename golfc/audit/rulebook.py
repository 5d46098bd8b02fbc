"""The rules ``golfc audit`` reports, in plain words: what each means, the evidence the audit needs before it
says so, and the organizer ruling (or README text, or community standard) behind it.

``golfc audit --explain RULE`` prints one entry; ``docs/rules.md`` is this table rendered by
:func:`render_markdown` (``python -m golfc.audit.rulebook > docs/rules.md``; a test keeps the two equal).
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    meaning: str
    evidence: str
    ruling: str


REPO = "openai/parameter-golf"

RULES: tuple[Rule, ...] = (
    Rule(
        "C1",
        "Strict causality",
        "The probability given to a validation token may depend only on the shipped artifact and the tokens "
        "before it: never on the token itself, later tokens, or statistics gathered from them.",
        "Not a finding of its own: the L rules below are the concrete ways submissions broke it (L1-L3, L5, "
        "L7, L11-L13, L18).",
        "Condition 1 of the community Field Guide (issue #1017), which organizers cite when excluding rows "
        "(@cocohearts, leaderboard PR #1902).",
    ),
    Rule(
        "C2",
        "A full, normalized distribution",
        "At each position the model must commit to one distribution over the whole token vocabulary, summing "
        "to 1, fixed before the realized token is looked at. Scoring only the realized token with a number "
        "that is not such a probability does not count.",
        "Not a finding of its own: L6-L8, L10, L11 and L14 are its concrete breaks.",
        "Condition 2 of issue #1017; @valerio-oai's n-gram rulings (PR #779, PR #982: caches that 'do not "
        "renormalize correctly'); the PPM-D/byte-mixture exclusions of PR #1902.",
    ),
    Rule(
        "C3",
        "Score before update",
        "A token's score is fixed first; only afterwards may any state (weights, adapters, caches) learn "
        "from that token.",
        "Not a finding of its own: L1, L2 and L4 are its breaks; legal score-first TTT passes.",
        "README (commit fc6332a9c, 2026-03-20): test-time training only on validation tokens 'you've already "
        "evaluated your model on'; @0hq in issue #402; Condition 3 of issue #1017.",
    ),
    Rule(
        "C4",
        "One left-to-right pass",
        "Each validation token is scored exactly once, in order. No second pass, and no choosing between "
        "runs by how they scored.",
        "Not a finding of its own: L5 and L6 are its breaks.",
        "Condition 4 of issue #1017; the 2026-03-27 ban of two-pass rescoring (@valerio-oai, issue #677).",
    ),
    Rule(
        "L1",
        "Training on validation tokens before scoring them",
        "Test-time training is allowed only on tokens that were already scored. Fine-tuning on validation "
        "tokens (all of them, or a chunk) and scoring them afterwards leaks them into their own scores.",
        "Validation data (val_tokens, fineweb_val_* files, or an argument a caller filled with them) reaching "
        "backward()/autograd.grad with no earlier no_grad or eval-mode score of the same data in the same "
        "chunk loop. The order is followed per chunk and through helpers: a helper that accumulates the loss "
        "counts as a score when called under no_grad; a helper that trains on what it is handed is judged at "
        "each call, by whether those tokens were scored before (phased / global-SGD TTT on already-scored "
        "documents passes). A score first in the iteration does not cover a training window that reaches past "
        "the scored chunk: the upper ends of the validation slices each side reads (chunks[i + 1], "
        "val[(i + 1) * C:(i + 2) * C]) are evaluated with the loop variable bound, and training further "
        "than the score is an L1 FAIL.",
        "README TTT rule (commit fc6332a9c, 2026-03-20); score-first TTT ruled legal by @0hq (issue #402); "
        "train-then-score PRs #152, #398, #672 closed.",
    ),
    Rule(
        "L2",
        "Rescoring a chunk after training on it (multi-epoch TTT)",
        "Training on a chunk for several epochs and reporting the score of the last epoch scores tokens the "
        "model has already learned.",
        "In one loop, a score of chunk c accumulated after an optimizer step that used chunk c, or an outer "
        "loop that repeats score-then-train over the same data (an epoch loop). A chunk index claimed from a "
        "work queue (idx = claim(); batches[idx]) counts as fresh data each iteration. Code behind a switch that "
        "is off by default is judged when a log line only that code prints opens a line of the run's logs.",
        "@valerio-oai on PR #568 (multi-epoch TTT is training on eval data), issue #677; the legal "
        "score-then-train pattern with an is_last_chunk guard (PR #1413).",
    ),
    Rule(
        "L3",
        "Pre-quantization TTT",
        "Fine-tuning on validation tokens before the artifact is quantized and saved bakes validation data "
        "into the weights that are then scored.",
        "Validation tokens reaching backward() before a quantize/serialize/GPTQ call in the same function or "
        "its caller, with no score of them first, or after only a whole-validation diagnostic evaluation (one "
        "that shares no chunk loop with the training step).",
        "PR #1376 closed by @valerio-oai (2026-04-10) and the cluster #1485-#1489, #1517, #1539 (issue #677, "
        "meta-comment 4229813460); 'pre-quant/future-validation leakage' exclusions in PR #1902.",
    ),
    Rule(
        "L4",
        "Compile warmup on validation tokens",
        "Warming up torch.compile for TTT by running backward()/step() on real validation tokens adapts on "
        "them before they are scored, unless the adapted state is thrown away.",
        "A warmup-named loop or function running backward() on validation data. FAIL when the optimizer steps "
        "state that survives (the model); WARN when every optimizer stepped is built in the warmup over an "
        "adapter also built there (and discarded).",
        "Raised by dexhunter on PR #1530, which the organizers merged with such a warmup on a throwaway "
        "LoRA and optimizer (the author's rerun without it scored within noise). No ruling beyond that merge.",
    ),
    Rule(
        "L5",
        "Two-pass rescoring",
        "Building a cache or adaptation over all of validation and then scoring (or rescoring) earlier "
        "positions with it uses the future to score the past.",
        "Two sibling loops in one function scoring the same validation data: FAIL when the second pass adds "
        "into the first pass's accumulator, reads a container the first pass filled (a cache over all of "
        "validation), or is named as a rescoring; WARN otherwise (loops in the two branches of one if are one "
        "pass). FAIL too when one function calls a scorer twice over the same tokens and combines both results "
        "arithmetically into the score it returns, or fills a table from the whole validation array (a method "
        "storing into its object's tables, outside any chunk loop) and computes the score it returns with it.",
        "2026-03-27 ban wave: two-pass rescoring disallowed, 30+ PRs closed (@valerio-oai, issue #677; "
        "PRs #846, #853, #870, #881, #888, #959).",
    ),
    Rule(
        "L6",
        "Oracle choice by loss",
        "Taking, per token, the lower loss of several models or passes picks using the answer.",
        "min/argmin/torch.where over candidate losses computed against the target token, or a per-token score "
        "overwritten with a candidate's loss when that loss is lower (if new < old: scored[t] = new).",
        "PRs #573 (min over 3 trajectories) and #659 (model vs 5-gram) rejected; Conditions 2 and 4 of issue #1017.",
    ),
    Rule(
        "L7",
        "Target token in an n-gram cache key",
        "A cache keyed by a hash that includes the token being predicted looks the answer up and returns a "
        "number that is not a normalized probability.",
        "The target token (y, targets, labels, or a name derived from them) flowing into a hashed lookup key "
        "of a count table; or a count looked up with the target in its key (a dict keyed (ctx, tgt) exactly "
        "counts too) divided by a count from another table (full/ctx computed only for the gold token). A "
        "table row read at the gold token and divided by that row's own sum is a distribution, not this. The "
        "target may be named by its index: tokens[pos] hashed with a context of tokens[pos - k] (inline or in "
        "the key a hashing helper returns), read beside a context-only hashed lookup of another table.",
        "@valerio-oai on PR #779 and PR #982: hashed n-gram caches 'look ahead to the target token to mix "
        "probabilities and therefore leak eval tokens'; the #779 family closed in the 2026-03-27 ban.",
    ),
    Rule(
        "L8",
        "N-gram mixture that is not normalized",
        "A mixture whose denominator is not the sum over the vocabulary does not give a distribution.",
        "A table with a column per candidate token (counts.gather(-1, tgt), counts[ctx, tgt] on an array) "
        "whose gold column is divided by a count from another table (the context count) instead of the sum of "
        "its row over the candidates. Other normalization errors need a probe at run time (sum p = 1).",
        "PR #972, corrected by #978; Condition 2 of issue #1017.",
    ),
    Rule(
        "L9",
        "Training data read at evaluation",
        "Evaluation may not read the training set (for example to pre-fill an n-gram table) unless those "
        "bits are paid for inside the 16 MB.",
        "A reference to the training shards (a fineweb_train path, a train_files / train_pattern knob) in a "
        "function named for evaluation (eval, score, ngram, cache, ttt ...) that scores validation tokens and "
        "trains nothing, or in a helper it calls (FAIL); in any other function after the artifact is loaded "
        "back, a WARN (GPTQ calibration there is L19). FAIL too when an object filled by a program method from "
        "training batches is handed to a scorer of validation tokens without being saved into the artifact, or "
        "is loaded back from the artifact while its class looks up with the target in the key (not normalized). "
        "A sandboxed evaluation would show the rest.",
        "README: no training dataset access during evaluation; PR #982 'Fort Knox' closed (@valerio-oai).",
    ),
    Rule(
        "L10",
        "A scalar expert in a context mixer",
        "Mixing in an 'expert' that is a single number (entropy) rather than a distribution breaks normalization.",
        "A stack/cat of per-token expert values in code handling validation data where one member is read at "
        "the target token and another is named as an entropy and is not (torch.stack([model_nll, bigram_nll, "
        "entropy_nll])). An entropy that sets the mixing weight is legal.",
        "Hedge mixer PR #745 rejected by @valerio-oai (second-hand); Condition 2 of issue #1017.",
    ),
    Rule(
        "L11",
        "A tilt or gate that reads the realized token",
        "An n-gram tilt is legal only on the prefix; gating it on properties of the token being predicted "
        "(within-word, word-start of x_t) makes the distribution depend on the answer.",
        "The target token reaching the condition or weight of a gate/tilt applied to the scored logits; or a "
        "branch on whether the target is in a cache the function fills as it scores (tgt in recent, "
        "(ctx, tgt) in cache), except a branch that only updates that cache. C/C++ sources that a Python "
        "file of the folder names and loads (ctypes, cffi, cpp_extension) are read too: a loop that writes the "
        "hint for position i (out[i] = ...) under a gate computed from tokens[i], and learns tokens[i] only "
        "afterwards. A gate on tokens[i - 1] is the legal form.",
        "The token-only tilt of PR #1145 was endorsed (second-hand, #1967) and precedent #1514; gated "
        "variants flagged in #1967 (comment 4356836010), #2018, #2118.",
    ),
    Rule(
        "L12",
        "SLOT on the scored positions",
        "Optimizing an eval-time delta or logit bias on the same positions that are then scored fits the answers.",
        "An eval-time tensor trained by an optimizer whose loss covers the positions later scored (the same "
        "slice, or a mask built by writing 1 into the scored slice).",
        "No organizer ruling; PR #1240's flip test proved the dependence (100% of tested pairs) and no SLOT "
        "submission reached the leaderboard. Issue #1336 remained open.",
    ),
    Rule(
        "L13",
        "SLOT delta shared across windows",
        "One delta of shape [1, 1, d] optimized over a batch of overlapping windows lets window i's score "
        "depend on tokens only later windows contain. A delta per window ([bsz, 1, d]) does not.",
        "An eval-time optimized tensor created with a batch dimension of 1 (or none) in a function that "
        "processes a batch of windows: torch.zeros(1, 1, d), H.new_zeros(1, 1, d), nn.Parameter of such a "
        "shape, or a small module whose only parameter is such a delta handed to the optimizer. Reported only "
        "when the SLOT switch is on in the effective configuration (defaults, README command, logged "
        "hyperparameters; minified aliases like _B=True are read).",
        "PR #1217 before its fix and PR #1333 (delta = torch.zeros(1, 1, D), batch of 32 windows); PR #1240's "
        "analysis of shared deltas.",
    ),
    Rule(
        "L14",
        "Byte-level mixture that is not a token distribution",
        "Spreading a token probability over its bytes and mixing with a byte-level model (PPM-D) does not give "
        "a distribution over the token vocabulary.",
        "A probability raised to one over a byte count (p ** (1 / n_bytes), torch.pow): FAIL when the same "
        "function mixes with a byte-level model (ppm, mix, blend), WARN alone. The log-domain form, a "
        "log-probability divided by a per-token byte length whose exp is added to another probability "
        "(lam * exp(lp / n) + (1 - lam) * exp(byte_lp)): FAIL. Scoring a subset is L15.",
        "sharpobject on PR #1872; 'PPM-D/byte-mixture C2' exclusions in leaderboard PR #1902 (@cocohearts).",
    ),
    Rule(
        "L15",
        "Scoring a subset or another partition of validation",
        "The score must cover the fixed first 50,000 documents, all of them.",
        "Logged val token counts that differ between a submission's runs (WARN); the canonical count is a "
        "reviewer's check.",
        "README (fixed first-50k-document set); PRs #1835, #1854, #2109.",
    ),
    Rule(
        "L16",
        "Train/validation overlap from data preparation",
        "Preparation scripts that put validation documents into the training shards train on the test set.",
        "A shipped preparation file (*.py other than train_gpt.py, *.sh) that takes fewer than 50,000 "
        "validation documents (an argparse --val-docs default, a NUM_VAL_DOCS constant, a --val-docs N "
        "argument): a WARN, since runs on the canonical shards are unaffected; the overlap itself needs the "
        "shards.",
        "Issue #2127 (the --val-docs=10000 default of prepare_caseops_data.py).",
    ),
    Rule(
        "L17",
        "Wrong byte count in the BPB denominator",
        "Bits per byte divides by the bytes of the original text. Counting more bytes than the text has (fallback "
        "tokens as 3 bytes, sentinel characters, a lossy normalization) makes the score look better.",
        "A byte-fallback token given more than one byte in the byte table (base_bytes[i] = 3 under "
        "sp.is_byte(i)), or a byte total scaled or padded by a constant (byte_count += tb.sum() * 1.1). A "
        "per-token byte table read from a file (a .meta.npz sidecar) with no unconditional check against the "
        "tokenizer is a WARN, a FAIL when submission.json declares a tokenizer that is not SentencePiece. Other "
        "errors (a lossy tokenizer transform, sentinel bytes) need the data: decode and compare byte totals.",
        "PR #897; the Scylla record removed in #1806 (PRs #1143, #1184, #1271, #1289); CaseOps #2138; "
        "Section V of issue #1017.",
    ),
    Rule(
        "L18",
        "Cross-document smear at BOS",
        "With document-masked attention, a one-token mixer (SmearGate) that ignores BOS carries the previous "
        "document's last token into the next document's first prediction.",
        "A previous-token mix (a SmearGate/bigram class or function, or inline x[:, 1:] + g * x[:, :-1]) in a "
        "model that uses document boundaries (cu_seqlens) with no BOS mask.",
        "@cocohearts on PR #1797 (comment 4322526174), fixed in #1851/#1855/#1868; disputed in #1988.",
    ),
    Rule(
        "L19",
        "GPTQ calibration on validation data or after the training clock",
        "Quantization calibration (Hessians) must use training tokens, or tokens the model generates itself, "
        "within the 600 s training budget. Calibrating on validation tokens, or at evaluation time, is out.",
        "FAIL when the calibration batches are validation tokens (traced through loaders, knobs such as "
        "val_files and helpers: a model that was validated during training is not validation data); WARN when "
        "calibration runs after the "
        "artifact is loaded back (evaluation time) or when the log shows the Hessians ending after 600 s. FAIL "
        "when calibration fed from the training shards follows a training loop whose log shows it ran to the "
        "600 s cap (train time >= 599 s, nothing reserved).",
        "GPTQ calibration at eval time or on val banned (issue #677: #535, #544, #569, #593, …); "
        "AR self-generated calibration legal (PR #1019, second-hand); the #1868 rerun with an 8 s reserve.",
    ),
    Rule(
        "L20",
        "Wall-clock overruns",
        "Training may take 600 s and evaluation another 600 s on 8xH100.",
        "FAIL when a log's train time passes 600 s by more than the step that crossed it, or its eval time "
        "passes 600 s, and the log is a record run on the record clock. A log that sets its own longer cap or "
        "ran on fewer GPUs, or a non-record submission, gets a WARN naming which clock it is.",
        "README limits; #1908 (forced step count, 601.15 s) rerun as #1956; eval overruns #1929, #1319.",
    ),
    Rule(
        "L21",
        "Validation data inside the artifact",
        "Shipping validation tokens (compressed or not) in the submission and reading them at evaluation is "
        "a paid prefix: the model is scored on data it carries.",
        "A data file shipped in the folder (not code, logs, docs, figures or a tokenizer model) that the "
        "program names: FAIL when it is named as validation data, is a token shard (the fineweb header), or is "
        "read by code that handles validation data; WARN when it is read elsewhere. Validation tokens packed "
        "into the weights themselves need the artifact-invariance probe. From the scorer alone: a per-token "
        "loss zeroed where the target equals a sequence that is not the model's prediction, the input or a "
        "constant (loss *= ~(prefix[lo:hi] == y)), whatever the folder holds.",
        "README: 'You CANNOT access validation data during training, e.g. by compressing it into your 16mb "
        "with paid prefix' (commit 2cff08e1a); PRs #168, #275.",
    ),
    Rule(
        "L22",
        "Over the 16,000,000-byte cap, or claims that do not match",
        "Code bytes plus compressed model bytes must be at most 16,000,000 for every seed. Records from "
        "2026-04-10 on ship a readable train_gpt.py and count its packed form (python-minifier, LZMA, base85 "
        "stub).",
        "The audit packs a readable script the same way itself and counts the smaller of shipped and packed: "
        "FAIL only when that total is over the cap; WARN when only the shipped file is over, giving both "
        "counts. Also: submission.json figures that match no log (WARN).",
        "README size rule; @regina-openai on PR #1835 (16,071,321 bytes ineligible); LZMA shims merged "
        "(#1394, #1412); 'over-cap artifacts' excluded in PR #1902.",
    ),
    Rule(
        "L23",
        "Seed evidence",
        "A record needs enough independent seeds (usually three) with logs to show significance.",
        "Fewer than three scored seeds (WARN); submission.json seeds that no log shows (WARN).",
        "README record criteria (p < 0.01, 'an average over 3 training runs'); 'single-seed tiny-margin' "
        "and 'missing-evidence' exclusions in PR #1902.",
    ),
    Rule(
        "NET",
        "Network access at evaluation",
        "Evaluation may make no network calls or downloads: the artifact must be self-contained.",
        "A network library or shell call (requests, urllib, curl) reachable from evaluation code.",
        "README: 'No external downloads, training dataset access, or network calls are allowed during evaluation.'",
    ),
    Rule(
        "INPUT",
        "A part of the folder that could not be read or checked",
        "Not a rule break: the audit says what it could not read (an unreadable log, a script this Python "
        "cannot parse, e.g. Python 3.12 f-strings that the rewrite could not handle) and what was therefore "
        "not checked. Code too deeply nested for any Python to compile is a FAIL: it cannot run.",
        "The file and line where reading stopped.",
        "README: the train_gpt.py 'must successfully compile and run within the records folder'.",
    ),
)

BY_ID = {rule.id: rule for rule in RULES}


def lookup(rule_id: str) -> Rule:
    """The rule named ``rule_id`` (case-insensitive, ``l1`` or ``L1``); KeyError with the known ids."""
    rule = BY_ID.get(rule_id.strip().upper())
    if rule is None:
        raise KeyError(f"unknown rule {rule_id!r}; known: {', '.join(BY_ID)}")
    return rule


def render_text(rule: Rule) -> str:
    """What ``--explain`` prints."""
    sections = [
        ("What it means", rule.meaning),
        ("Evidence golfc needs", rule.evidence),
        ("Ruling behind it", rule.ruling),
    ]
    body = "".join(
        f"{title}\n{textwrap.fill(text, 100, initial_indent='  ', subsequent_indent='  ')}\n\n"
        for title, text in sections
    )
    return f"{rule.id}: {rule.title}\n\n{body}Issue and PR numbers are in https://github.com/{REPO}\n"


def render_markdown() -> str:
    """``docs/rules.md``."""
    parts = [
        "# The rules `golfc audit` reports\n",
        "Each rule in plain words: what it means, the evidence golfc needs before it reports it, and the "
        "organizer ruling, README text or community standard behind it. Issue and PR numbers are in "
        f"[{REPO}](https://github.com/{REPO}). `golfc audit --explain RULE` prints one entry.\n",
        "Severities: **FAIL** when the evidence is certain, **WARN** when a reviewer should look, **INFO** for "
        "notes (code that is not live under the effective configuration, legal patterns). C1-C4 are the "
        "conditions of the community Field Guide (issue #1017) that the L rules make concrete.\n",
        "This file is generated by `python -m golfc.audit.rulebook > docs/rules.md` from `golfc/audit/rulebook.py`.\n",
    ]
    for rule in RULES:
        parts.append(
            f"## {rule.id} — {rule.title}\n\n"
            f"**What it means.** {rule.meaning}\n\n"
            f"**Evidence golfc needs.** {rule.evidence}\n\n"
            f"**Ruling behind it.** {rule.ruling}\n"
        )
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
