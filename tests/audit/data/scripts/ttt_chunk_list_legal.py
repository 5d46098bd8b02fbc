"""Legal: chunks of the validation stream are scored in order and a helper trains on chunks[i] right after
its score is committed (score-first TTT with the right chunk order)."""
import torch
import torch.nn.functional as F

CHUNK = 32768


def load_validation_tokens(pattern):
    return torch.load(pattern)


def adapt(model, opt, chunk):
    loss = F.cross_entropy(model(chunk[:-1]), chunk[1:])
    loss.backward()
    opt.step()
    opt.zero_grad()


def eval_val_ttt(model, val_tokens):
    opt = torch.optim.SGD(model.parameters(), lr=0.005)
    chunks = [val_tokens[s:s + CHUNK + 1] for s in range(0, val_tokens.numel() - 1, CHUNK)]
    nll_sum = torch.zeros((), dtype=torch.float64)
    for i in range(len(chunks) - 1):
        with torch.no_grad():
            nll_sum += F.cross_entropy(model(chunks[i][:-1]), chunks[i][1:], reduction="sum").double()
        adapt(model, opt, chunks[i])
    return nll_sum


def main():
    val_tokens = load_validation_tokens("./data/fineweb_val_000000.bin")
    model = torch.nn.Embedding(1024, 1024)
    print(f"legal_ttt_exact val_bpb:{eval_val_ttt(model, val_tokens).item():.8f}")


if __name__ == "__main__":
    main()
