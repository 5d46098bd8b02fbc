"""L3 leak: AdamW on the validation tokens before GPTQ, baked into the artifact."""
import os

import torch
import torch.nn.functional as F

PREQUANT_TTT_EPOCHS = int(os.environ.get("PREQUANT_TTT_EPOCHS", "8"))


def load_validation_tokens(pattern):
    return torch.load(pattern)


def adapt_on(model, tokens, epochs):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for _ in range(epochs):
        loss = F.cross_entropy(model(tokens[:-1]), tokens[1:])
        loss.backward()
        opt.step()
        opt.zero_grad()


def quantize_state_dict(state):
    return {k: v.to(torch.int8) for k, v in state.items()}


@torch.no_grad()
def eval_val(model, val_tokens):
    loss_sum = F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:], reduction="sum")
    total = torch.zeros(())
    total += loss_sum
    return total


def main():
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("./data/fineweb_val_000000.bin")
    adapt_on(model, val_tokens, PREQUANT_TTT_EPOCHS)
    blob = quantize_state_dict(model.state_dict())
    torch.save(blob, "final_model.int8.ptz")
    print(eval_val(model, val_tokens))


if __name__ == "__main__":
    main()
