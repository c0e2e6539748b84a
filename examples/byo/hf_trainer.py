"""A Hugging Face Trainer script on tandem.sdk.hf (examples/byo/hf-trainer-sdk.yaml runs it with torchrun under
tandem-run). Three lines of Tandem: `trainer_arguments` sets the per-device batch and gradient accumulation from the
global batch and this attempt's world size, `resume_from_checkpoint` is the newest complete `checkpoint-<step>/`
tandem-run found, and `TandemCallback` reports every step to tandem-run's hang watch. After a failover to a pool of
another size the Trainer goes on from the same step, with the same global batch and the same next samples.

The model is a Llama built from its configuration and the data a seeded token stream, so the script runs anywhere
without a download; put `AutoModelForCausalLM.from_pretrained(...)` and your tokenized dataset in their place.
"""

from __future__ import annotations

import os
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

from tandem.sdk.hf import TandemCallback, resume_from_checkpoint, trainer_arguments

# Sequences per optimizer step, per device and pass at most, optimizer steps, steps between checkpoints, model size.
GLOBAL_BATCH, MICRO_BATCH, STEPS, SAVE_EVERY, HIDDEN, LAYERS, SEQ_LEN = (int(os.environ.get(name, default)) for
                                                                         name, default in (
    ("GLOBAL_BATCH", 64), ("MICRO_BATCH", 4), ("STEPS", 2000), ("SAVE_EVERY", 200), ("HIDDEN", 512), ("LAYERS", 8),
    ("SEQ_LEN", 512)))
VOCAB = 32000 if HIDDEN >= 256 else 64


class TokenStream(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Sample i is a function of i alone (your tokenized corpus here)."""

    def __len__(self) -> int:
        return GLOBAL_BATCH * STEPS

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids = torch.randint(0, VOCAB, (SEQ_LEN,), generator=torch.Generator().manual_seed(index))
        return {"input_ids": ids, "labels": ids.clone()}


def main() -> None:
    on_cpu = os.environ.get("TANDEM_ACCELERATOR", "cpu") == "cpu"
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=4 * HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=max(HIDDEN // 64, 2), num_key_value_heads=max(HIDDEN // 128, 1),
        max_position_embeddings=SEQ_LEN))
    output_dir = os.path.join(os.environ.get("TANDEM_CHECKPOINT_DIR", "checkpoints"), "hf")
    args = TrainingArguments(**trainer_arguments(
        GLOBAL_BATCH, MICRO_BATCH, output_dir=output_dir, max_steps=STEPS, save_steps=SAVE_EVERY, save_total_limit=3,
        logging_steps=1, learning_rate=3e-4, seed=0, report_to=[], disable_tqdm=True, use_cpu=on_cpu,
        bf16=not on_cpu))
    trainer = Trainer(model=model, args=args, train_dataset=TokenStream(), callbacks=[TandemCallback()])
    trainer.train(resume_from_checkpoint=resume_from_checkpoint(output_dir))
    # End the process here, before the Trainer's DDP model and process group are destroyed at exit: PyTorch can
    # deadlock there (the gloo destructor joins its thread with the GIL held while that thread waits for the GIL;
    # pytorch/pytorch#190489). The Trainer saved its last checkpoint before train() returned.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
