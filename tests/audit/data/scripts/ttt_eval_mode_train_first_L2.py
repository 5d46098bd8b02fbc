"""L2 leak (train-first twin of ttt_eval_mode_score_first_legal.py): each chunk is trained on, then scored in
eval mode (model.eval(), no no_grad) with the updated weights."""
import torch
import torch.nn.functional as F


def load_validation_tokens(pattern):
    return torch.load(pattern)


class ChunkedTTT:
    def __init__(self, model, chunk_tokens=32768, epochs=2):
        self.model = model
        self.chunk_tokens = chunk_tokens
        self.epochs = epochs
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.002, momentum=0.9)

    def run(self, val_tokens):
        loss_sum = torch.zeros((), dtype=torch.float64)
        token_count = 0
        for start in range(0, val_tokens.numel() - 1, self.chunk_tokens):
            local = val_tokens[start:start + self.chunk_tokens + 1]
            inputs, labels = local[:-1], local[1:]
            self.model.train()
            for _ in range(self.epochs):
                self.optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(self.model(inputs), labels).backward()
                self.optimizer.step()
            self.model.eval()
            loss_sum += F.cross_entropy(self.model(inputs), labels, reduction="sum").detach().double()
            token_count += labels.numel()
        return loss_sum / token_count


def main():
    ttt = ChunkedTTT(torch.nn.Embedding(1024, 1024))
    print(f"legal_ttt_exact val_loss:{ttt.run(load_validation_tokens('./data/fineweb_val_000000.bin')):.8f}")


if __name__ == "__main__":
    main()
