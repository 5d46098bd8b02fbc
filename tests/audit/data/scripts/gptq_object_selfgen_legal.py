"""Legal: AR self-generated GPTQ calibration fed through a GPTQ object's add_batch method."""
import torch


class GPTQ:
    def __init__(self, model):
        self.model = model
        self.H = {}

    def add_batch(self, x):
        self.model(x)

    def quantize(self):
        return self.model


def generate_calibration(model, n_seqs=64, seq_len=2048, bos_id=1):
    seqs = torch.full((n_seqs, 1), bos_id)
    with torch.no_grad():
        for _ in range(seq_len - 1):
            nxt_tok = torch.multinomial(model(seqs)[:, -1].softmax(-1), 1)
            seqs = torch.cat([seqs, nxt_tok], 1)
    return seqs


def main():
    model = torch.nn.Module()
    gq = GPTQ(model)
    calib_seqs = generate_calibration(model)
    for xb in calib_seqs.split(8):
        gq.add_batch(xb)
    gq.quantize()
    val_tokens = torch.load("./data/fineweb_val_000000.bin")
    with torch.no_grad():
        nll_sum = model(val_tokens).sum()
    print(nll_sum)


if __name__ == "__main__":
    main()
