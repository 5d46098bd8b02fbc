"""Seed statistics and the record / progression tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from scipy import stats as scipy_stats

from golfc.audit.folder import audit_folder, load_against
from golfc.audit.stats import Sample, compare, parse_values, summarize
from golfc.errors import GolfcError

RECORDS = Path(__file__).parent / "data" / "records"
RATIO = 2.3225 / 1.0614


def test_summary_uses_each_runs_own_ratio() -> None:
    sample = Sample((1.0, 1.2), (2.0, 2.5))
    summary = summarize(sample)
    assert summary["mean_bpb"] == pytest.approx(1.1) and summary["mean_nats"] == pytest.approx((2.0 + 3.0) / 2)
    assert summary["std_bpb"] == pytest.approx(0.1414213, abs=1e-6)


def test_record_test_is_welch_with_the_margin() -> None:
    ours = Sample((1.0500, 1.0505, 1.0495), (RATIO,) * 3)
    theirs = Sample((1.0611, 1.0614, 1.0620), (None,) * 3)
    report = compare(ours, theirs, "values")
    nats_ours = [b * RATIO for b in ours.bpb]
    nats_theirs = [b * RATIO for b in theirs.bpb]
    expected = scipy_stats.ttest_ind([v + 0.005 for v in nats_ours], nats_theirs, equal_var=False, alternative="less")
    assert report["record"]["p"] == pytest.approx(expected.pvalue)
    assert report["record"]["pass"] is bool(expected.pvalue < 0.01) is True
    assert report["progression"]["pass"] is True


def test_no_improvement_fails_both_tests() -> None:
    report = compare(Sample((1.0612, 1.0616, 1.0610), (RATIO,) * 3), Sample((1.0611, 1.0614), (None, None)), "x")
    assert report["record"]["pass"] is False and report["progression"]["pass"] is False


def test_single_reference_value_uses_a_one_sample_test() -> None:
    report = compare(Sample((1.00, 1.01, 1.02), (RATIO,) * 3), Sample((1.2,), (None,)), "1.2")
    assert report["record"]["pass"] is True


def test_against_a_folder_and_values() -> None:
    sample, source = load_against(str(RECORDS / "2026-03-20_Int6_MLP3x_SmearGate_BigramHash_MuonWD_SWA"))
    assert len(sample.bpb) == 3 and all(sample.nats_per_bpb)
    audit = audit_folder(RECORDS / "2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT", (sample, source))
    assert audit.stats["against"]["record"]["pass"] is True
    assert parse_values("1.0611, 1.0614") == [1.0611, 1.0614]
    with pytest.raises(GolfcError):
        load_against("not-a-number")


@pytest.mark.parametrize("text", ["nan,1.06", "1.06,inf", "-1.06", "0", ","])
def test_against_rejects_values_that_are_no_score(text: str) -> None:
    """A NaN would reach the JSON document as the non-standard token NaN."""
    with pytest.raises(GolfcError, match="expected comma-separated val_bpb values"):
        load_against(text)
