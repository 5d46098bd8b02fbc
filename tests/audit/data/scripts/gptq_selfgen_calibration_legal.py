"""Legal: AR self-generated GPTQ calibration (the model samples its own calibration tokens)."""
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


def generate(model, length):
    tokens = torch.ones(1, dtype=torch.long)
    for _ in range(length):
        tokens = torch.cat([tokens, model(tokens[-1:]).argmax(-1)])
    return tokens


def main():
    model = torch.nn.Embedding(1024, 64)
    calibration = [generate(model, 2048) for _ in range(16)]
    hessians = collect_hessians(model, calibration)
    torch.save(gptq_quantize(model, hessians), "final_model.int6.ptz")


if __name__ == "__main__":
    main()
