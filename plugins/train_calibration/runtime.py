# ==================================================================================================
# plugins/train_calibration: the default calibration source. A quantizer that calibrates (GPTQ's Hessians)
# reads training micro-batches from a fresh TrainLoader (data_loader slot), which reads only h.train_files
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def train_calibration_batches(model, h, ctx, count):
    """`count` training micro-batches: this rank's x, int64 (b, TRAIN_SEQ_LEN) on ctx.device, as training reads them
    (the loader starts again at the first shard); validation data is never a calibration input."""
    loader = TrainLoader(h, ctx)
    for _ in range(count):
        yield loader.next_batch(h.train_batch_tokens, h.train_seq_len, ctx.grad_accum_steps)[0]
