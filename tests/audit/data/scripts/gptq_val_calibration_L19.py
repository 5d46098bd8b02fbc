"""L19 leak: GPTQ Hessians collected on validation tokens."""
import torch


def load_validation_tokens(pattern):
    return torch.load(pattern)


def collect_hessians(model, batches):
    hessians = {}
    for batch in batches:
        h = model(batch)
        hessians[len(hessians)] = h.T @ h
    return hessians


def gptq_quantize(model, hessians):
    return {name: p.round() for name, p in model.state_dict().items()}, hessians


def main():
    model = torch.nn.Embedding(1024, 64)
    val_tokens = load_validation_tokens("./data/fineweb_val_000000.bin")
    calibration = [val_tokens[i:i + 2048] for i in range(0, 16 * 2048, 2048)]
    hessians = collect_hessians(model, calibration)
    torch.save(gptq_quantize(model, hessians), "final_model.int6.ptz")


if __name__ == "__main__":
    main()
