"""Fixtures of the golfc verify tests: a small dataset and hand-written fake submissions that print the
reference's log lines and read data the way a leaky one would."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

# A hand-written submission in the reference's log format: stdlib + numpy, a fraction of a second per run. Its
# behaviour per seed comes from FAKE_MODE_<seed> (else FAKE_MODE), comma-separated: clean, hang (training never ends),
# val_in_training, train_at_eval, slow_clock (logs a 700 s training clock), net (tries the network), crash,
# stubborn (ignores SIGTERM).
FAKE_PROGRAM = textwrap.dedent('''
    import os, socket, sys, time
    import numpy as np
    seed = int(os.environ.get("SEED", "0"))
    mode = os.environ.get(f"FAKE_MODE_{seed}", os.environ.get("FAKE_MODE", "clean")).split(",")
    data = os.environ.get("DATA_PATH") or "./data/datasets/fineweb10B_sp384"  # the reference's style of default
    train = os.path.join(data, "fineweb_train_000000.bin")
    val = os.path.join(data, "fineweb_val_000000.bin")
    def log(msg):
        print(msg, flush=True)
    with open("pid", "w") as f:
        f.write(str(os.getpid()))
    log(f"cuda_visible:{os.environ.get('CUDA_VISIBLE_DEVICES')}")
    np.fromfile(val, dtype="<u2")  # set-up: the validation tokens, once, as the reference loads them
    log(f"seed:{seed}")
    if "stubborn" in mode:  # ignores SIGTERM: only a SIGKILL stops it
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "crash" in mode:
        sys.exit(3)
    if "net" in mode:
        try:
            socket.create_connection(("192.0.2.1", 80), timeout=2).close()
            log("network:reachable")
        except OSError as exc:
            log(f"network:unreachable errno={exc.errno}")
    log("warmup_step:1/1")
    # golfc stamps a line when it reads it, a little after the print: reads right at a phase boundary could fall
    # on either side of it, so this program (like a real one, restoring its weights) does not read right there
    time.sleep(0.3)
    iterations = 3
    for step in range(1, iterations + 1):
        np.memmap(train, dtype="<u2", mode="r")[:10].sum()
        if "val_in_training" in mode:
            with open(val, "rb") as f:
                f.read(16)
        if "hang" in mode:
            time.sleep(3600)
        time.sleep(0.05)
        log(f"step:{step}/{iterations} train_loss:{5.0 - 0.1 * step:.4f} train_time:{100 * step}ms step_avg:100.00ms")
    train_ms = 700000 if "slow_clock" in mode else 300
    log(f"step:{iterations}/{iterations} val_loss:4.6000 val_bpb:2.7000 train_time:{train_ms}ms step_avg:100.00ms")
    artifact = 1000 + seed
    with open("final_model.int8.ptz", "wb") as f:
        f.write(bytes(artifact))
    code = os.path.getsize(__file__)
    log(f"Serialized model int8+zlib: {artifact} bytes")
    log(f"Code size: {code} bytes")
    log(f"Total submission size int8+zlib: {artifact + code} bytes")
    time.sleep(0.3)  # the evaluation loads the artifact back
    if "train_at_eval" in mode:
        np.fromfile(train, dtype="<u2", count=8)
    val_loss = 4.5 + seed * 1e-4
    val_bpb = val_loss / 1.7
    log(f"final_int8_zlib_roundtrip val_loss:{val_loss:.4f} val_bpb:{val_bpb:.4f} eval_time:50ms")
    log(f"final_int8_zlib_roundtrip_exact val_loss:{val_loss:.8f} val_bpb:{val_bpb:.8f}")
''')


@pytest.fixture(scope="session")
def small_data(tiny_dataset, tmp_path_factory):
    """The tiny dataset cut to one small train and one small validation shard (fast evaluations)."""
    from golfc.verify.valindep import small_copy

    root = small_copy(tiny_dataset.data_path, tmp_path_factory.mktemp("small_data"), train_tokens=40_000,
                      val_tokens=2_049)
    return {"DATA_PATH": str(root), "TOKENIZER_PATH": str(tiny_dataset.tokenizer_path),
            "VOCAB_SIZE": str(tiny_dataset.vocab_size)}


@pytest.fixture
def fake_submission(tmp_path) -> Path:
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "train_gpt.py").write_text(FAKE_PROGRAM)
    return folder
