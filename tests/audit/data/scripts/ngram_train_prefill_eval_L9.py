"""L9 leak: the evaluation pre-fills an n-gram table from the training shards (after training, at eval time),
then mixes it into the scores of the validation tokens."""
import glob

import numpy as np
import torch


class Hyperparameters:
    train_files = "./data/fineweb_train_*.bin"
    val_files = "./data/fineweb_val_*.bin"


def bigram_counts(files):
    counts = np.ones((1024, 1024), dtype=np.float32)
    for path in sorted(glob.glob(files)):
        toks = np.fromfile(path, dtype=np.uint16).astype(np.int64)
        np.add.at(counts, (toks[:-1], toks[1:]), 1)
    return counts / counts.sum(1, keepdims=True)


def eval_val_ngram(args, model, val_tokens):
    table = torch.from_numpy(bigram_counts(args.train_files))
    nll_sum = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        x, y = val_tokens[:-1], val_tokens[1:]
        probs = 0.8 * model(x).softmax(-1) + 0.2 * table[x]
        nll_sum += -torch.log(probs.gather(-1, y[:, None])).double().sum()
    return nll_sum


def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = torch.from_numpy(np.fromfile("./data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    print(eval_val_ngram(args, model, val_tokens))


if __name__ == "__main__":
    main()
