"""core/train's artifact pipeline: the baseline's bytes unchanged, calibration from training data only (never
validation), a foreign artifact refused in one line, the 16,000,000-byte budget enforced with nothing lost."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import zlib
from pathlib import Path

import pytest
import torch

from golfc.testing import cpu_context, load_program

GOLDEN_ENV = {"DEVICE": "cpu", "NUM_LAYERS": "2", "MODEL_DIM": "256", "NUM_HEADS": "4", "NUM_KV_HEADS": "2"}
# the int8+zlib artifact of GOLDEN_ENV's weights (seed 1234, N(0, 0.05)), written by golfc at 3d94c5a (before the
# artifact pipeline took model, ctx and calibration), under torch 2.13.0+cpu (torch.save's bytes depend on it)
GOLDEN = {"torch": "2.13.0+cpu", "bytes": 1_249_285,
          "sha256": "fca6963c0e13bbd792c776a9cabac586b675f85c6b6297ef49d6e53d84b49bff"}


def export_in(ns, model, h, ctx, workdir, **kw):
    """export_artifact of a loaded program, run in `workdir` as the emitted program would."""
    ns["__file__"] = __file__  # any file: only its size is read (as the code's)
    old = os.getcwd()
    os.chdir(workdir)
    try:
        return Path(workdir) / ns["export_artifact"](model, h, ctx, **kw)
    finally:
        os.chdir(old)


def golden_model(ns):
    torch.manual_seed(1234)
    model = ns["GPT"](ns["Hyperparameters"]())
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    return model


def test_baseline_artifact_bytes_are_unchanged(tmp_path, monkeypatch):
    ns = load_program(env=GOLDEN_ENV)
    monkeypatch.setitem(ns, "program_source", lambda: "")
    ns["__file__"] = __file__
    monkeypatch.chdir(tmp_path)
    model = golden_model(ns)
    blob = Path(ns["export_artifact"](model, ns["Hyperparameters"](), cpu_context(ns, vocab=1024))).read_bytes()
    # the pipeline is the int8 quantizer, torch.save and zlib level 9 of the state dict, nothing else
    buf = io.BytesIO()
    torch.save(ns["quantize_state_dict_int8"](model.state_dict(), ns["Hyperparameters"]())[0], buf)
    assert blob == zlib.compress(buf.getvalue(), 9)
    assert torch.__version__ == GOLDEN["torch"], "the golden bytes were written by another torch: regenerate them"
    assert (len(blob), hashlib.sha256(blob).hexdigest()) == (GOLDEN["bytes"], GOLDEN["sha256"])


class Recorder:
    """Every file the process opens while `on` (a sys.addaudithook cannot be removed: it stays, switched off)."""

    def __init__(self):
        self.on, self.paths = False, []
        sys.addaudithook(self)

    def __call__(self, event, args):
        if self.on and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            self.paths.append(os.fsdecode(args[0]))


RECORDER = Recorder()


def calibrating_program(plugin_dir, tiny_dataset, extra_env=None):
    """The baseline with a quantizer that draws four calibration batches and records them."""
    runtime = """
CALIB_SEEN = []


def calib_quantize(model, state, h, ctx, calibration):
    CALIB_SEEN.extend(calibration.batches(4))
    calibration.finished()
    return quantize_model_int8(model, state, h, ctx, calibration)
"""
    build = """
from golfc import Impl, hookimpl

@hookimpl
def golfc_quantizer():
    return Impl(module="calib_runtime", requires=("golfc_plugins.int8_quant.runtime",),
                symbols={"quantize_model": "calib_quantize", "dequantize_state_dict": "dequantize_state_dict_int8",
                         "QUANT_LABEL": "INT8_LABEL"})
"""
    plugin_dir.add("calib", build, runtime)
    env = {**GOLDEN_ENV, "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "TRAIN_SEQ_LEN": "64",
           "TRAIN_BATCH_TOKENS": "4096", **tiny_dataset.env(), **(extra_env or {})}
    ns = load_program(("calib",), env=env, plugins_dir=plugin_dir.root)
    h = ns["Hyperparameters"]()
    h.train_files = os.path.join(h.data_path, "fineweb_train_*.bin")
    h.val_files = os.path.join(h.data_path, "fineweb_val_*.bin")
    return ns, h


def test_calibration_reads_training_shards_and_never_validation(plugin_dir, tiny_dataset, tmp_path, monkeypatch):
    ns, h = calibrating_program(plugin_dir, tiny_dataset)
    monkeypatch.setitem(ns, "load_validation_tokens", lambda *a, **k: pytest.fail("calibration loaded validation"))
    ctx = cpu_context(ns, vocab=h.vocab_size)
    model = ns["GPT"](h)
    printed = io.StringIO()
    monkeypatch.setattr(sys, "stdout", printed)
    RECORDER.paths.clear()
    RECORDER.on = True
    try:
        export_in(ns, model, h, ctx, tmp_path, train_ms=1234.0)
    finally:
        RECORDER.on = False
    opened = [os.path.basename(p) for p in RECORDER.paths]
    assert any(p.startswith("fineweb_train_") for p in opened)  # the recorder sees the shard reads
    assert not any("val" in p for p in opened), opened
    seen = ns["CALIB_SEEN"]
    assert len(seen) == 4 and all(x.dtype == torch.int64 and x.shape == (8, 64) for x in seen)
    train_tokens = ns["load_data_shard"](sorted(Path(h.data_path).glob("fineweb_train_*.bin"))[0])
    assert torch.equal(seen[0].reshape(-1), train_tokens[: 8 * 64].to(torch.int64))  # the stream's first batch
    line = next(s for s in printed.getvalue().splitlines() if s.startswith("calibration:"))
    assert line.startswith("calibration:train_calibration batches:4 seconds:") and "train_ms:1234" in line


def test_no_calibration_is_read_by_the_baseline(tmp_path, tiny_dataset, monkeypatch):
    ns = load_program(env={**GOLDEN_ENV, **tiny_dataset.env()})
    monkeypatch.setitem(ns, "TrainLoader", lambda *a: pytest.fail("the int8 quantizer read calibration data"))
    h = ns["Hyperparameters"]()
    export_in(ns, golden_model(ns), h, cpu_context(ns, vocab=1024), tmp_path)


def test_another_compressors_artifact_is_one_line(tmp_path):
    ns = load_program(env=GOLDEN_ENV)
    bad = tmp_path / "final_model.int6.ptz"
    bad.write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(100))  # a zstd magic, not zlib
    with pytest.raises(ns["RunInputError"], match=r"^.*final_model\.int6\.ptz: not a zlib artifact of this program \("):
        ns["read_artifact"](str(bad))
    bad.write_bytes(zlib.compress(b"not a torch file"))
    with pytest.raises(ns["RunInputError"], match=r"decompressed, but not a torch\.save object"):
        ns["read_artifact"](str(bad))


def test_over_budget_is_an_error_with_both_numbers_and_nothing_lost(tmp_path, monkeypatch):
    ns = load_program(env=GOLDEN_ENV)
    monkeypatch.setitem(ns, "program_source", lambda: "")
    ns["ARTIFACT_BUDGET_BYTES"] = 1_000_000  # the golden model's artifact is 1,249,285 bytes
    ns["__file__"] = __file__
    monkeypatch.chdir(tmp_path)
    h = ns["Hyperparameters"]()
    with pytest.raises(ns["RunInputError"], match=r"final_model\.int8\.ptz: 1249285 model bytes \+ \d+ code bytes = \d+ "
                       r"> 1000000; final_model\.pt keeps the unquantized weights"):
        ns["export_artifact"](golden_model(ns), h, cpu_context(ns, vocab=1024))
    kept = torch.load(tmp_path / "final_model.pt")
    assert torch.equal(kept["tok_emb.weight"], golden_model(ns).state_dict()["tok_emb.weight"])
    assert (tmp_path / "final_model.int8.ptz").stat().st_size == 1_249_285


@pytest.mark.slow
def test_eval_only_of_another_scheme_is_one_line_and_exit_2(tmp_path, tiny_dataset):
    """An int8+zlib artifact given to int6 programs: a zstd one names the stream, a zlib one the format version."""
    import subprocess

    from golfc.build import build_submission
    from golfc.testing import TINY_RUN_ENV

    ns = load_program(env=GOLDEN_ENV)
    buf = io.BytesIO()
    torch.save(ns["quantize_state_dict_int8"](golden_model(ns).state_dict())[0], buf)
    artifact = tmp_path / "final_model.int8.ptz"
    artifact.write_bytes(zlib.compress(buf.getvalue(), 9))
    env = {**os.environ, **TINY_RUN_ENV, **tiny_dataset.env(), "EVAL_ONLY": str(artifact)}
    expected = {("int6", "zstd"): f"error: {artifact}: not a zstd artifact of this program (",
                ("int6",): "error: artifact format 'int8_per_row_v1': this program reads 'golfc_lowbit_v1' artifacts"}
    for plugins, line in expected.items():
        out = build_submission(plugins, {}, tmp_path / "_".join(plugins)).out_dir
        proc = subprocess.run([sys.executable, "train_gpt.py"], cwd=out, env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith(line), proc.stderr
