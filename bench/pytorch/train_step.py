"""PyTorch eager reference for `realdenoise-train bench-step`: the same training step on the same network.

One step: draw t ~ U{1..T} per crop, blend x_t = (1 - t/T) x0 + (t/T) y, predict, Charbonnier loss
(eps 1e-3), backward, gradient clipping to a global L2 norm of 1, AdamW (weight decay 1e-4), and the
EMA of the weights (decay min(0.999, (1 + step) / (10 + step))): training/src/train.rs's
optimisation_step. Prints the median seconds per step and crops per second as a markdown row.

    bench/pytorch/.venv/bin/python bench/pytorch/train_step.py --batch-size 4 --patch-size 128 --steps 5
"""

import argparse
import copy
import os
import statistics
import time

import torch

from model import UNet


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--patch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)

    model = UNet()
    average = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=1e-4)
    shape = (args.batch_size, 3, args.patch_size, args.patch_size)
    clean = torch.rand(shape)
    noisy = 0.8 * clean + 0.2 * torch.rand(shape)
    timesteps = model.timesteps

    seconds = []
    for step in range(args.warmup + args.steps):
        started = time.perf_counter()
        t = torch.randint(1, timesteps + 1, (args.batch_size,)).float()
        alpha = (t / timesteps).view(-1, 1, 1, 1)
        x_t = (1 - alpha) * clean + alpha * noisy
        loss = torch.sqrt((model(x_t, t) - clean) ** 2 + 1e-6).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for kept, current in zip(average.parameters(), model.parameters()):
                kept.mul_(decay).add_(current, alpha=1 - decay)
        loss.item()
        if step >= args.warmup:
            seconds.append(time.perf_counter() - started)

    median = statistics.median(seconds)
    listed = ", ".join(f"{s:.2f}" for s in seconds)
    print(f"| PyTorch {torch.__version__} eager ({args.threads} threads) | {median:.2f} | {args.batch_size / median:.2f} | {listed} |")


if __name__ == "__main__":
    main()
