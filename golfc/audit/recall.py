"""Recall on real illegal PRs of openai/parameter-golf: is each flagged with the rule its ruling names?

``python -m golfc.audit.recall GIT_DIR [--workers N]`` reads each PR's head (``refs/pull/N/head``) from a
clone or mirror of the challenge repository, takes the record folder(s) the PR adds under ``records/``,
audits them, and prints the table in docs/audit-recall.md: PR, ruling, rule expected, rules found. A PR
counts as caught when a finding of the expected rule is a FAIL (or a WARN where the rule is judged only
as a warning, see ``WARN_ENOUGH``). Bad input is one line and exit 2.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from golfc.audit.findings import Severity
from golfc.audit.folder import audit_folder


@dataclass(frozen=True)
class Case:
    pr: int
    rule: str
    ruling: str  # who ruled, where, in a few words
    also: tuple[str, ...] = ()  # rules that name the same ruling (train-first TTT is L1 or, before the
    # artifact is quantized, L3: the reviews call both "TTT on val without score-first")
    commit: str | None = None  # the commit the ruling was about, when the PR was fixed after it (else its head)

    @property
    def rev(self) -> str:
        return self.commit or f"refs/pull/{self.pr}/head"


# Illegal PRs with the ruling behind each (docs/rules.md cites the same threads). Kept to PRs whose head
# ships a record folder with a train_gpt.py; the ruling names the rule.
CASES: tuple[Case, ...] = (
    Case(672, "L1", "30-epoch TTT on all val, then scored; issue #1082 citing #402/#677 (@0hq, @valerio-oai)"),
    Case(298, "L1", "LoRA adapter trained on val before the first scored batch; Community Review, #402", ("L3",)),
    Case(1127, "L1", "single-pass TTT on val before eval; author self-flag citing #402/#677", ("L3",)),
    Case(713, "L2", "3 epochs per document chunk, score on final epoch; #677 (@valerio-oai)"),
    Case(525, "L2", "batched LoRA TTT scored on the final epoch; #677 (@valerio-oai)"),
    Case(568, "L2", "multi-epoch TTT scored on the last epoch; @valerio-oai on PR #568"),
    Case(1376, "L3", "pre-quant AdamW TTT on val; closed, #677 meta-comment (@valerio-oai)", ("L1",)),
    Case(1487, "L3", "pre-quant TTT cluster closed as invalid; #677 meta-comment 4229813460"),
    Case(1517, "L3", "pre-quant TTT (18 epochs) on val; same cluster as #1488 (#677)"),
    Case(1482, "L3", "pre-quant TTT 8 epochs on val; closed, same cluster (#677)"),
    Case(846, "L5", "two-pass rescoring with a cache built over all val; 2026-03-27 ban (#677)"),
    Case(870, "L5", "two-pass full rescore; 2026-03-27 ban (#677)"),
    Case(881, "L5", "leave-one-out rescoring; 2026-03-27 ban (#677)"),
    Case(573, "L6", "min over 3 trajectories' losses; oracle selection (#677)"),
    Case(659, "L6", "per-token min of model vs 5-gram loss; @valerio-oai review of #659"),
    Case(779, "L7", "hashed n-gram cache with the target in the key; @valerio-oai on PR #779"),
    Case(797, "L7", "7-gram hashed cache, full key holds the target; #779 family"),
    Case(753, "L7", "multi-order backoff, target in the full key; #779 family"),
    Case(727, "L7", "n-gram backoff, target-keyed; #779 family (2026-03-27 ban)"),
    Case(776, "L7", "kitchen-sink 7-gram, tn in the full key; #779 family"),
    Case(972, "L8", "'normalized' n-gram whose denominator is not the sum over candidates; author's fix #978"),
    Case(982, "L9", "Fort Knox: training-data n-gram table used at eval; @valerio-oai on PR #982"),
    Case(925, "L9", "order-16 oracle pre-filled from all training shards at eval start; closed (#677)"),
    Case(745, "L10", "Hedge mixer with an entropy 'expert'; rejected by @valerio-oai"),
    Case(1967, "L11", "n-gram tilt gated on the realized token (within_gate); #1967 comment 4356836010"),
    Case(1229, "L12", "scored-position SLOT; no SLOT reached the leaderboard, PR #1240 proof"),
    Case(1324, "L12", "SLOT delta and logit bias fit on scored positions; PR #1240 proof"),
    Case(1333, "L13", "causal SLOT with a [1,1,D] delta shared by 32 windows; PR #1240 / #1017 C1"),
    Case(1785, "L14", "byte-level PPM-D mixture, not a distribution over tokens; #1872 (sharpobject)"),
    Case(1289, "L17", "Scylla byte-fallback ids with base_bytes 3; record removed in #1806"),
    Case(
        1797, "L18", "SmearGate across BOS; @cocohearts on PR #1797 (audited before its fix 17f50d9)", (), "8e4bea2e0"
    ),
    Case(593, "L19", "GPTQ calibration at eval time; 2026-03-27 ban list (#677)"),
    Case(569, "L19", "GPTQ calibration outside the training budget; #677"),
    Case(168, "L21", "paid prefix: val tokens inside the artifact; ruled out of scope (README)"),
)
# Rules whose evidence the audit can only ever WARN on (needs the shards or a runtime probe).
WARN_ENOUGH = frozenset({"L16"})


@dataclass(frozen=True)
class Outcome:
    case: Case
    folders: tuple[str, ...]
    found: tuple[str, ...]  # "L7 FAIL", ... (WARN and FAIL, one per rule and severity)
    caught: bool
    note: str = ""


def pr_folders(git_dir: Path, pr: int, head: str | None = None) -> list[str]:
    """Record folders (holding a train_gpt.py) that the PR's head (or ``head``) adds or changes, relative to
    main."""
    head = head or f"refs/pull/{pr}/head"
    base = _git(git_dir, "merge-base", "HEAD", head).strip()
    changed = _git(git_dir, "diff", "--name-only", "--diff-filter=AM", base, head, "--", "records/").splitlines()
    folders = sorted({str(Path(p).parent) for p in changed if Path(p).name == "train_gpt.py"})
    return folders


def _git(git_dir: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], check=True, capture_output=True, text=True).stdout


def judge(git_dir: Path, case: Case) -> Outcome:
    try:
        folders = pr_folders(git_dir, case.pr, case.rev)
    except subprocess.CalledProcessError:
        return Outcome(case, (), (), False, "PR head not in this clone")
    try:
        return _audit_pr(git_dir, case, folders)
    except (subprocess.CalledProcessError, OSError, ValueError) as exc:
        return Outcome(case, (), (), False, f"could not read the PR's folder: {type(exc).__name__}")


def _audit_pr(git_dir: Path, case: Case, folders: list[str]) -> Outcome:
    if not folders:
        return Outcome(case, (), (), False, "PR adds no record folder with a train_gpt.py")
    found: dict[str, Severity] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for folder in folders:
            _extract(git_dir, case.rev, folder, Path(tmp))
            for finding in audit_folder(Path(tmp) / folder).findings:
                if finding.severity > Severity.INFO:
                    found[finding.rule] = max(found.get(finding.rule, finding.severity), finding.severity)
    needed = Severity.WARN if case.rule in WARN_ENOUGH else Severity.FAIL
    caught = any(found.get(rule, Severity.INFO) >= needed for rule in (case.rule, *case.also))
    labels = tuple(f"{rule} {severity.name}" for rule, severity in sorted(found.items()))
    return Outcome(case, tuple(Path(f).name for f in folders), labels, caught)


def _extract(git_dir: Path, rev: str, folder: str, into: Path) -> None:
    """The folder's files at ``rev``, one blob at a time: a mirror may lack some large blobs (a shipped model),
    which ``git archive`` refuses as a whole; those are left out, the code and logs are what is audited."""
    listing = _git(git_dir, "ls-tree", "-r", "-z", rev, "--", folder)
    for entry in listing.split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        mode, kind, blob = meta.split()
        if kind != "blob" or mode == "120000":
            continue
        data = subprocess.run(
            ["git", "--git-dir", str(git_dir), "cat-file", "blob", blob], check=False, capture_output=True
        )
        if data.returncode != 0:
            continue
        target = into / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.stdout)


def run(git_dir: Path, workers: int = 2, cases: tuple[Case, ...] = CASES) -> list[Outcome]:
    if workers <= 1:
        return [judge(git_dir, case) for case in cases]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(judge, [git_dir] * len(cases), cases))


# What a miss needs, for the cases the audit does not catch yet (printed under the table when still missed).
MISS_NOTES: dict[int, str] = {
    1797: "the pre-fix smear is inline in the forward (x[:, 1:] + g * x[:, :-1]) under varlen attention; that is an "
    "L18 WARN because a record merged on main (2026-04-16_SmearGate_AttentionOutputGate_ScoreFirstTTT) has the "
    "same shape; a FAIL needs the organizers to rule on that record too",
}


def render(outcomes: list[Outcome], source: str) -> str:
    scored = [o for o in outcomes if o.folders]
    caught = sum(o.caught for o in scored)
    share = 100 * caught / max(1, len(scored))
    lines = [
        "# `golfc audit` recall on real illegal PRs",
        "",
        "Illegal PRs of openai/parameter-golf with the ruling behind each, audited at their head "
        "(`refs/pull/N/head`, or the commit the ruling was about where the PR was fixed later) in "
        f"{source}: the record folder(s) each PR adds are extracted and audited with `audit_folder`. **Caught** "
        "means a FAIL of the rule the ruling names (for train-first TTT the reviews do not say whether training "
        "came before quantization, so L1 or L3 both count). `rules found` lists every rule with a WARN or FAIL "
        "and its worst severity. Generated by `python -m golfc.audit.recall GIT_DIR --source NAME > "
        "docs/audit-recall.md` (`golfc/audit/recall.py`, cases and rulings in `CASES`); every row is audited "
        "by the same code. Minimal programs with the same structures (never the PRs' code) are the fixtures of "
        "`tests/audit/test_rules.py`, `tests/audit/test_recall.py`, `tests/audit/test_recall_depth.py`, "
        "`tests/audit/test_native.py`, `tests/audit/test_byte_tables.py`, `tests/audit/test_byte_mixture.py` and "
        "`tests/audit/test_paid_prefix_scorer.py`.",
        "",
        f"**Result: {caught} of {len(scored)} caught ({share:.0f}%).**",
        "",
        "| PR | ruling | rule expected | rules found | caught |",
        "|---|---|---|---|---|",
    ]
    for o in outcomes:
        found = ", ".join(o.found) or "—"
        mark = "yes" if o.caught else ("—" if not o.folders else "**no**")
        where = f" ({o.note})" if o.note else ""
        expected = " or ".join((o.case.rule, *o.case.also))
        lines.append(f"| #{o.case.pr} | {o.case.ruling}{where} | {expected} | {found} | {mark} |")
    missed = [o for o in outcomes if not o.caught and o.case.pr in MISS_NOTES]
    if missed:
        lines += ["", "What the misses need (not done):", ""]
        lines += [f"- #{o.case.pr} ({o.case.rule}): {MISS_NOTES[o.case.pr]}." for o in missed]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m golfc.audit.recall", description=__doc__.splitlines()[0])
    parser.add_argument("git_dir", type=Path, help="the git directory of a clone of openai/parameter-golf")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--source", default=None)
    parser.add_argument("--only", type=int, nargs="*", default=None, help="audit only these PR numbers")
    args = parser.parse_args(argv)
    if not (args.git_dir / "HEAD").is_file():
        print(f"error: {args.git_dir}: not a git directory (expected HEAD inside)", file=sys.stderr)
        return 2
    cases = CASES if not args.only else tuple(c for c in CASES if c.pr in set(args.only))
    outcomes = run(args.git_dir, max(1, args.workers), cases)
    sys.stdout.write(render(outcomes, args.source or str(args.git_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
