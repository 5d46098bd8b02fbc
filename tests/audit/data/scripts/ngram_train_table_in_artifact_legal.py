"""Legal: the n-gram table is built from the training shards during training, saved into the artifact with
the weights, and evaluation reads only the artifact (and the validation tokens)."""
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


def train(args, model):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for path in sorted(glob.glob(args.train_files)):
        toks = torch.from_numpy(np.fromfile(path, dtype=np.uint16).astype(np.int64))
        loss = torch.nn.functional.cross_entropy(model(toks[:-1]), toks[1:])
        loss.backward()
        opt.step()
        opt.zero_grad()
    table = torch.from_numpy(bigram_counts(args.train_files)).half()
    torch.save({"model": model.state_dict(), "table": table}, "final_model.pt")


def eval_val_ngram(model, table, val_tokens):
    nll_sum = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        x, y = val_tokens[:-1], val_tokens[1:]
        probs = 0.8 * model(x).softmax(-1) + 0.2 * table[x].float()
        nll_sum += -torch.log(probs.gather(-1, y[:, None])).double().sum()
    return nll_sum


def main():
    args = Hyperparameters()
    model = torch.nn.Embedding(1024, 1024)
    train(args, model)
    artifact = torch.load("final_model.pt")
    model.load_state_dict(artifact["model"])
    val_tokens = torch.from_numpy(np.fromfile("./data/fineweb_val_000000.bin", dtype=np.uint16).astype(np.int64))
    print(eval_val_ngram(model, artifact["table"], val_tokens))


if __name__ == "__main__":
    main()
