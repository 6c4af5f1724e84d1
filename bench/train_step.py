"""CPU time of one training step under glibc's default allocator settings and under the training scripts' ones.

    python -m bench.train_step [--model efficientnet-lite1] [--size 224] [--batch 32] [--steps 4] [--threads 1]

Found while the issue-16 folds ran: a fold's epochs slowed from 280 s to 630-790 s, with a third of the CPU in the
kernel. Each step frees and re-allocates activations of tens of MB; glibc serves blocks that large with ``mmap`` and
returns them with ``munmap``, so every step faults in and zeroes fresh 4 KB pages (hundreds of thousands of page
faults per step), and the compute on them misses the TLB. The command-line trainers therefore re-run themselves under
``training.allocator.TRAINING_TUNABLES``: malloc asks for transparent huge pages and keeps freed memory for the next
step (the price: the process keeps its peak heap, about 5.6 GB for Lite1 at 224 px, batch 32). The app keeps its own
settings (``models.cache.tune_heap``: memory that stays flat over hours, issue 21).

Each setting runs in its own subprocess (glibc reads the tunables at start): ``--steps`` timed steps after two warm-up
steps on a random batch (forward, cross-entropy, backward, AdamW), one torch thread by default (the scripts' lanes).
Prints the median user and system CPU seconds and the minor page faults per step, then the ratio of CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from training.allocator import TRAINING_TUNABLES  # the one definition


def _steps(model: str, size: int, batch: int, steps: int, threads: int) -> dict:
    import resource

    import torch

    from models.registry import build_model

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    net = build_model("skin_lesion", model).to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(net.parameters(), 1e-4)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 3, (batch,))
    rows = []
    for i in range(steps + 2):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        if i >= 2:
            rows.append((r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt))
    return {k: statistics.median(r[i] for r in rows) for i, k in enumerate(("user_s", "sys_s", "minor_faults"))}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="efficientnet-lite1", help="a skin_lesion variant")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        result = _steps(args.model, args.size, args.batch, args.steps, args.threads)
        print(json.dumps(result))
        return result
    out = {}
    for name, tunables in (("glibc defaults", ""), ("training scripts' tunables", TRAINING_TUNABLES)):
        env = {**os.environ, "GLIBC_TUNABLES": tunables}
        cmd = [sys.executable, "-m", "bench.train_step", "--child", "--model", args.model, "--size", str(args.size),
               "--batch", str(args.batch), "--steps", str(args.steps), "--threads", str(args.threads)]  # fmt: skip
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
        r = out[name]
        print(f"{name:28s} user {r['user_s']:.2f} s  sys {r['sys_s']:.2f} s  minor faults {r['minor_faults']:,.0f} "
              f"per step ({args.model}, {args.size} px, batch {args.batch}, {args.threads} thread(s))")  # fmt: skip
    a, b = (sum(out[k][m] for m in ("user_s", "sys_s")) for k in out)
    print(f"CPU time per step, defaults / tunables: {a / b:.2f}x")
    return out


if __name__ == "__main__":
    main()
