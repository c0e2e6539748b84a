"""A Hugging Face Trainer script on tandem.sdk.hf for the tests (a tiny randomly initialised Llama, no download):
8 sequences per optimizer step on any world size, 6 steps, a checkpoint every 3; with DIE_AT_STEP=<n> a callback
raises DIE_WITH (default: CUDA's illegal memory access) at step n, on attempt DIE_ON_ATTEMPT only when that is set.
It prints `plan <per-device batch> <accumulation>`."""

from __future__ import annotations

import textwrap

SCRIPT = textwrap.dedent('''
    import os
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments
    from tandem.sdk.hf import TandemCallback, resume_from_checkpoint, trainer_arguments

    out = os.path.join(os.environ["TANDEM_CHECKPOINT_DIR"], "hf")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    model = LlamaForCausalLM(config)
    data = [{"input_ids": torch.randint(0, 64, (16,)), "labels": torch.randint(0, 64, (16,))} for _ in range(64)]

    class DiesAt(TandemCallback):
        def on_step_end(self, args, state, control, **kwargs):
            super().on_step_end(args, state, control, **kwargs)
            dies = os.environ.get("DIE_ON_ATTEMPT") in (None, os.environ.get("TANDEM_ATTEMPT"))
            if dies and state.global_step == int(os.environ.get("DIE_AT_STEP", "0")):
                raise RuntimeError(os.environ.get("DIE_WITH", "CUDA error: an illegal memory access was encountered"))

    args = TrainingArguments(**trainer_arguments(8, 2, output_dir=out, max_steps=6, save_steps=3, logging_steps=1,
                                                 report_to=[], use_cpu=True, seed=0, disable_tqdm=True))
    print("plan", args.per_device_train_batch_size, args.gradient_accumulation_steps, flush=True)
    Trainer(model=model, args=args, train_dataset=data, callbacks=[DiesAt()]).train(
        resume_from_checkpoint=resume_from_checkpoint(out))
''')


