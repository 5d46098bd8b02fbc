"""core/data: shard reader errors, validation tokens, tokenizer check and the BPB byte tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golfc.data.shards import write_shard


def header(magic=20240520, version=1, num_tokens=0):
    h = np.zeros(256, dtype="<i4")
    h[:3] = (magic, version, num_tokens)
    return h


def write_raw(path, head, tokens):
    with open(path, "wb") as f:
        f.write(head.tobytes())
        f.write(np.asarray(tokens, dtype="<u2").tobytes())
    return path


def one_line_error(excinfo, *needles):
    message = str(excinfo.value)
    assert "\n" not in message
    for needle in needles:
        assert str(needle) in message, message


def test_shard_reader_returns_the_tokens(tmp_path, program):
    path = tmp_path / "fineweb_val_000000.bin"
    write_shard(path, [1, 5, 65535, 7])
    tokens = program["load_data_shard"](str(path))
    assert tokens.dtype == torch.uint16 and tokens.to(torch.int64).tolist() == [1, 5, 65535, 7]


@pytest.mark.parametrize(
    ("head", "tokens", "needles"),
    [
        (header(magic=123, num_tokens=2), [1, 2], ["magic 123", "expected 20240520"]),
        (header(version=2, num_tokens=2), [1, 2], ["version 2", "expected 1"]),
        (header(num_tokens=3), [1, 2], ["1028 bytes", "expected 1030"]),
        (header(num_tokens=1), [1, 2], ["1028 bytes", "expected 1026"]),
    ],
    ids=["magic", "version", "short", "long"],
)
def test_corrupt_shard_is_a_one_line_error_naming_the_file(tmp_path, program, head, tokens, needles):
    path = write_raw(tmp_path / "bad.bin", head, tokens)
    with pytest.raises(ValueError) as excinfo:
        program["load_data_shard"](str(path))
    one_line_error(excinfo, path, *needles)


def test_truncated_header_is_a_one_line_error(tmp_path, program):
    path = tmp_path / "stub.bin"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError) as excinfo:
        program["load_data_shard"](str(path))
    one_line_error(excinfo, path, "header")


def test_a_directory_or_an_out_of_vocabulary_id_is_a_one_line_error(tmp_path, program):
    (tmp_path / "dir.bin").mkdir()
    with pytest.raises(ValueError) as excinfo:
        program["load_data_shard"](str(tmp_path / "dir.bin"))
    one_line_error(excinfo, tmp_path / "dir.bin", "not a file")
    path = tmp_path / "ids.bin"
    write_shard(path, [1, 5, 600, 7])
    assert program["load_data_shard"](str(path), 601).numel() == 4
    with pytest.raises(ValueError) as excinfo:
        program["load_data_shard"](str(path), 512)
    one_line_error(excinfo, path, "token id 600", "VOCAB_SIZE=512")


def test_check_shards_reads_every_header_and_counts_tokens(tmp_path, program):
    for i, n in enumerate((5, 0, 3)):
        write_shard(tmp_path / f"fineweb_train_00000{i}.bin", list(range(n)))
    pattern = str(tmp_path / "fineweb_train_*.bin")
    assert program["check_shards"](pattern) == 8  # an empty shard among full ones is fine
    write_raw(tmp_path / "fineweb_train_000003.bin", header(version=9, num_tokens=1), [1])  # the last shard
    with pytest.raises(ValueError) as excinfo:
        program["check_shards"](pattern)
    one_line_error(excinfo, "fineweb_train_000003.bin", "version 9")
    empty = tmp_path / "empty"
    empty.mkdir()
    write_shard(empty / "fineweb_train_000000.bin", [])
    with pytest.raises(ValueError) as excinfo:
        program["check_shards"](str(empty / "fineweb_train_*.bin"))
    one_line_error(excinfo, "every shard is empty")


def test_missing_shards_name_the_glob(tmp_path, program):
    pattern = str(tmp_path / "fineweb_train_*.bin")
    with pytest.raises(FileNotFoundError) as excinfo:
        program["shard_files"](pattern)
    one_line_error(excinfo, pattern)


def test_validation_tokens_concatenate_in_order_and_cut_to_whole_windows(tmp_path, program):
    write_shard(tmp_path / "fineweb_val_000001.bin", range(100, 107))
    write_shard(tmp_path / "fineweb_val_000000.bin", range(10))
    tokens = program["load_validation_tokens"](str(tmp_path / "fineweb_val_*.bin"), 4)
    # 17 tokens -> (17 - 1) // 4 * 4 + 1 = 17; with seq_len 5: 15 + 1 = 16
    assert tokens.tolist() == list(range(10)) + list(range(100, 107))
    tokens = program["load_validation_tokens"](str(tmp_path / "fineweb_val_*.bin"), 5)
    assert tokens.dtype == torch.int32 and tokens.tolist() == list(range(10)) + list(range(100, 106))
    with pytest.raises(ValueError) as excinfo:
        program["load_validation_tokens"](str(tmp_path / "fineweb_val_*.bin"), 17)
    one_line_error(excinfo, "TRAIN_SEQ_LEN=17")


class H:
    def __init__(self, tokenizer_path, vocab_size):
        self.tokenizer_path, self.vocab_size = str(tokenizer_path), vocab_size


def test_tokenizer_vocab_mismatch_is_a_one_line_error(tiny_dataset, program):
    with pytest.raises(ValueError) as excinfo:
        program["load_tokenizer"](H(tiny_dataset.tokenizer_path, 1024))
    one_line_error(excinfo, tiny_dataset.tokenizer_path, "512", "VOCAB_SIZE=1024")
    with pytest.raises(FileNotFoundError) as excinfo:
        program["load_tokenizer"](H("/nonexistent/tok.model", 512))
    one_line_error(excinfo, "/nonexistent/tok.model")


def test_a_file_that_is_no_tokenizer_is_a_one_line_error(tmp_path, program):
    garbage = tmp_path / "tok.model"
    garbage.write_text('{"text": "not a model"}\n')
    with pytest.raises(ValueError) as excinfo:
        program["load_tokenizer"](H(garbage, 512))
    one_line_error(excinfo, f"TOKENIZER_PATH={garbage}", "not a SentencePiece model")


def byte_count(program, sp, text):
    """Bytes of text under the BPB tables, scored as a document: [BOS] + pieces."""
    ids = torch.tensor([1, *sp.encode(text)])
    luts = program["build_bpb_luts"](sp, sp.vocab_size(), torch.device("cpu"))
    return int(program["target_bytes"](ids[:-1], ids[1:], luts).sum()), sp.encode(text, out_type=str)


def test_bpb_byte_count_equals_a_hand_count(tiny_dataset, program):
    sp = program["load_tokenizer"](H(tiny_dataset.tokenizer_path, 512))
    text = "And the king said"
    total, pieces = byte_count(program, sp, text)
    # hand count: each piece's UTF-8 bytes with U+2581 counted as one space; no space before the first word
    hand = sum(len(p.replace("\u2581", " ").encode("utf-8")) for p in pieces)
    assert pieces[0][0] != "\u2581" and total == hand == len(text)


def test_bpb_byte_count_covers_multibyte_and_byte_fallback(tiny_dataset, program):
    sp = program["load_tokenizer"](H(tiny_dataset.tokenizer_path, 512))
    text = "caf\u00e9 \u4e2d \U0001f984 ok"  # 2-byte, 3-byte (byte fallback) and 4-byte (byte fallback) characters
    total, pieces = byte_count(program, sp, text)
    assert any(p.startswith("<0x") for p in pieces)
    assert total == len(text.encode("utf-8")) == 17


def test_bpb_tables_follow_the_piece_rules(tiny_dataset, program):
    sp = program["load_tokenizer"](H(tiny_dataset.tokenizer_path, 512))
    base, space, boundary = program["build_bpb_luts"](sp, 520, torch.device("cpu"))
    assert base.dtype == torch.int16 and base.shape == (520,)
    for t in (0, 1, 2, 3):  # pad/unknown, BOS, EOS, UNK: boundaries of zero bytes
        assert boundary[t] and base[t] == 0 and not space[t]
    assert boundary[512:].all() and (base[512:] == 0).all()  # ids past the tokenizer
    byte_id = sp.piece_to_id("<0x41>")
    assert base[byte_id] == 1 and not boundary[byte_id]
    word = next(t for t in range(4, 512) if sp.id_to_piece(t).startswith("\u2581") and len(sp.id_to_piece(t)) > 2)
    assert space[word] and base[word] == len(sp.id_to_piece(word)[1:].encode("utf-8"))
