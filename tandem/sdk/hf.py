"""`tandem.sdk.hf`: a Hugging Face `Trainer` script gains restart, failover and a kept global batch in a few lines
(docs/design.md#the-sdk):

    from tandem.sdk.hf import TandemCallback, trainer_arguments
    args = TrainingArguments(**trainer_arguments(global_batch=256, micro_batch=8, output_dir=out), ...)
    trainer = Trainer(model, args, ..., callbacks=[TandemCallback()])
    trainer.train(resume_from_checkpoint=resume_from_checkpoint(out))

`trainer_arguments` derives `per_device_train_batch_size` and `gradient_accumulation_steps` from the global batch
and this attempt's world size; `resume_from_checkpoint` is the checkpoint tandem-run found (a Trainer checkpoint
under `output_dir`), else None; `TandemCallback` reports every step (and the logged loss) to tandem-run's hang
watch. Imports transformers, so only a script that has it imports this module.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from tandem.sdk import batch_plan, progress, resume_point


class TandemCallback(TrainerCallback):  # type: ignore[misc]
    """Reports the Trainer's optimizer steps (and logged numbers) to tandem-run: progress without a log line."""

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        progress(state.global_step)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        numbers = {k: float(v) for k, v in (logs or {}).items()
                   if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))}
        progress(state.global_step, **numbers)


def trainer_arguments(global_batch: int, micro_batch: int | None = None, **more: Any) -> dict[str, Any]:
    """TrainingArguments keywords that reach `global_batch` sequences per optimizer step on this attempt's world:
    `per_device_train_batch_size` (at most `micro_batch`) and `gradient_accumulation_steps`; `more` is passed on."""
    plan = batch_plan(global_batch, micro_batch)
    return {**more, "per_device_train_batch_size": plan.micro_batch, "gradient_accumulation_steps": plan.accumulation}


def resume_from_checkpoint(output_dir: str | Path) -> str | None:
    """The Trainer checkpoint tandem-run found under `output_dir` (for `trainer.train(resume_from_checkpoint=...)`),
    else None: a fresh start, or a checkpoint of another layout or folder."""
    point = resume_point()
    if point is None or not Path(point.path).name.startswith("checkpoint-"):
        return None
    inside = Path(point.path).resolve().is_relative_to(Path(output_dir).resolve())
    return point.path if inside else None
