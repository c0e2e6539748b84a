"""A small DDP training script on tandem.sdk that the SDK tests run under tandem-run and torchrun (locally and
through the real operator). Rank 0 prints what it loaded (`loaded <step> sample <n> weights <digest>
same-weights <bool> world <w> plan <micro>x<accumulation>`) and what it saved (`saved <step> weights <digest>`),
and records each saved digest on the checkpoint volume; with FAIL_ON_ATTEMPT=<attempt> rank 1 of that attempt
prints HCCL's EI0006 and exits 1 after the last checkpoint is committed."""

from __future__ import annotations

import textwrap

EI0006 = "EI0006: Getting socket times out. Reason: Remote Rank did not send the data in time."

SCRIPT = textwrap.dedent(f'''
    import hashlib, os, pathlib, sys
    import torch, torch.distributed as dist
    import tandem.sdk as sdk
    from tandem.sdk.checkpoint import Checkpointer

    def digest(model):
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        return hashlib.sha256(weights.numpy().tobytes()).hexdigest()[:16]

    ctx = sdk.init()
    record = pathlib.Path(os.environ["TANDEM_CHECKPOINT_DIR"]) / "sdk-weights"
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 8)
    if ctx.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    optim = torch.optim.Adam(model.parameters(), lr=0.01)
    ckpt = Checkpointer(ctx, keep=2)
    loaded = ckpt.load(model, optim)
    start, state = (loaded.step, loaded.state) if loaded else (0, {{"sample": 0}})
    plan = sdk.batch_plan(8, micro_batch=2)
    if ctx.rank == 0:
        saved = (record / str(start)).read_text() if start and (record / str(start)).exists() else None
        print(f"loaded {{start}} sample {{state['sample']}} weights {{digest(model)}} same-weights "
              f"{{saved == digest(model)}} world {{ctx.world_size}} plan {{plan.micro_batch}}x{{plan.accumulation}}",
              flush=True)
    for step in range(start + 1, start + 4):
        for _ in range(plan.accumulation):
            model(torch.randn(plan.micro_batch, 8)).pow(2).mean().backward()
        ckpt.wait_staged()
        optim.step()
        optim.zero_grad()
        state = {{"sample": state["sample"] + plan.micro_batch * plan.accumulation * ctx.world_size}}
        sdk.progress(step)
        ckpt.save(step, model, optim, state)
        ckpt.wait()
        if ctx.rank == 0:
            record.mkdir(exist_ok=True)
            (record / str(step)).write_text(digest(model))
            print(f"saved {{step}} weights {{digest(model)}}", flush=True)
    if ctx.world_size > 1:
        dist.barrier()  # rank 0 has committed the last checkpoint
    if os.environ.get("FAIL_ON_ATTEMPT", "none") == os.environ.get("TANDEM_ATTEMPT") and ctx.rank == 1:
        print({EI0006!r}, file=sys.stderr, flush=True)
        sys.exit(1)
    if dist.is_initialized():
        dist.destroy_process_group()
''')
