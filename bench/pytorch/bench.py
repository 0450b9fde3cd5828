"""PyTorch reference timings for `realdenoise bench`: the same network, the
same weights, the same tiles and sampler, on the same device.

Modes: eager fp32; eager autocast (bf16 on the CPU, fp16 on CUDA);
torch.compile (fp32). Every configuration runs in a child process, so its
peak memory (host ru_maxrss; CUDA max_memory_allocated) is its own.

    python bench.py --weights W --device cpu --sizes 256x256,1024x1024 --steps 1,4 --json out.json
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rdnz  # noqa: E402
from model import blend, schedule  # noqa: E402

SMALL_IMAGE = 256 * 256
# The pipeline's defaults (src/denoiser.rs, src/tiling.rs).
MEMORY_BUDGET = 1 << 30
MAX_TILE_SIDE = 2048
MARGIN, FEATHER = 48, 16


def activation_bytes_per_pixel(config):
    widths = [m * config["base_channels"] for m in config["channel_multipliers"]]
    scale, stored, working = 1.0, float(config["base_channels"]), 0.0
    for level, width in enumerate(widths):
        per_level = float(config["blocks_per_level"] * width)
        if level + 1 < len(widths):
            per_level += width
        stored += per_level * scale
        working = max(working, 2 * width * scale * 4.0)
        scale /= 4.0
    return 4.0 * (stored + working)


def tile_side(config, budget=MEMORY_BUDGET):
    align = 1 << (len(config["channel_multipliers"]) - 1)
    minimum = 2 * (2 * MARGIN + FEATHER) + align
    fitting = int((budget / activation_bytes_per_pixel(config)) ** 0.5)
    return max(min(fitting // align * align, MAX_TILE_SIDE // align * align), -(-minimum // align) * align)


def axis_spans(length, tile, overlap, align):
    if length <= tile:
        return [(0, length)]
    widest = max((tile - overlap) // align * align, align)
    count = -(-(length - overlap) // widest)
    stride = -(-(-(-(length - overlap) // count)) // align) * align
    while count > 1 and (count - 1) * stride >= length:
        count -= 1
    return [(i * stride, length if i + 1 == count else i * stride + stride + overlap) for i in range(count)]


def axis_weights(span, length):
    def ramp(distance):
        if distance < MARGIN:
            return 0.0
        if distance < MARGIN + FEATHER:
            return (distance - MARGIN) / FEATHER + 0.5 / FEATHER
        return 1.0

    start, end = span
    return np.array(
        [min(ramp(p - start) if start > 0 else 1.0, ramp(end - 1 - p) if end < length else 1.0) for p in range(start, end)],
        dtype=np.float32,
    )


def synthetic_photo(width, height, seed=7):
    rng = np.random.default_rng(seed)
    fy, fx = np.meshgrid(np.arange(height) / height, np.arange(width) / width, indexing="ij")
    edge = np.where(((np.arange(width)[None, :] // 37) + (np.arange(height)[:, None] // 29)) % 2 == 0, 40.0, 0.0)
    planes = [60.0 + 120.0 * ((fx + 0.3 * c + 0.5 * fy) % 1.0) + edge + 40.0 * (rng.random((height, width)) - 0.5) for c in range(3)]
    return np.clip(np.stack(planes), 0, 255).astype(np.uint8)


class Pipeline:
    """Tiles, sampler loop on the device, one read-back per tile, feathered blend: as src/denoiser.rs."""

    def __init__(self, model, config, device, steps, autocast_dtype=None, compiled=False):
        self.model = torch.compile(model) if compiled else model
        self.config = config
        self.device = device
        self.transitions = schedule(config["timesteps"], steps)
        self.autocast_dtype = autocast_dtype
        self.align = 1 << (len(config["channel_multipliers"]) - 1)
        self.tile = tile_side(config)

    def grid(self, width, height):
        overlap = 2 * MARGIN + FEATHER
        return axis_spans(height, self.tile, overlap, self.align), axis_spans(width, self.tile, overlap, self.align)

    @torch.no_grad()
    def denoise(self, image):
        _, height, width = image.shape
        rows, columns = self.grid(width, height)
        sums = np.zeros((3, height, width), dtype=np.float32)
        weights = np.zeros((height, width), dtype=np.float32)
        timesteps = self.config["timesteps"]
        for row in rows:
            for column in columns:
                tile = image[:, row[0] : row[1], column[0] : column[1]].astype(np.float32) / 255.0
                y = torch.from_numpy(tile)[None].to(self.device)
                x = y
                for t, t_prev in self.transitions:
                    steps = torch.full((1,), float(t), device=self.device)
                    if self.autocast_dtype is not None:
                        with torch.autocast(device_type=self.device.split(":")[0], dtype=self.autocast_dtype):
                            x0_hat = self.model(x, steps)
                        x0_hat = x0_hat.float()
                    else:
                        x0_hat = self.model(x, steps)
                    x = x - blend(x0_hat, y, t, timesteps) + blend(x0_hat, y, t_prev, timesteps)
                out = x.clamp(0.0, 1.0)[0].cpu().numpy()
                w = axis_weights(row, height)[:, None] * axis_weights(column, width)[None, :]
                sums[:, row[0] : row[1], column[0] : column[1]] += out * w
                weights[row[0] : row[1], column[0] : column[1]] += w
        return np.clip(np.rint(sums / weights * 255.0), 0, 255).astype(np.uint8)

    def executed_pixels(self, width, height):
        rows, columns = self.grid(width, height)
        up = lambda n: -(-n // self.align) * self.align  # noqa: E731
        return sum(up(r[1] - r[0]) * up(c[1] - c[0]) for r in rows for c in columns)


def flops_per_pixel(config):
    def conv(cin, cout, k, scale):
        return 2.0 * k * k * cin * cout * scale

    def block(cin, cout, scale):
        return conv(cin, cout, 3, scale) + conv(cout, cout, 3, scale) + (0.0 if cin == cout else conv(cin, cout, 1, scale))

    widths = [m * config["base_channels"] for m in config["channel_multipliers"]]
    last = len(widths) - 1
    scale, channels = 1.0, config["base_channels"]
    flops = conv(config["image_channels"], channels, 3, scale)
    skips = [channels]
    for level, width in enumerate(widths):
        for _ in range(config["blocks_per_level"]):
            flops += block(channels, width, scale)
            channels = width
            skips.append(channels)
        if level < last:
            scale /= 4.0
            flops += conv(channels, channels, 3, scale)
            skips.append(channels)
    flops += 2.0 * block(channels, channels, scale)
    for level in reversed(range(len(widths))):
        for _ in range(config["blocks_per_level"] + 1):
            flops += block(channels + skips.pop(), widths[level], scale)
            channels = widths[level]
        if level > 0:
            scale *= 4.0
            flops += conv(channels, channels, 3, scale)
    return flops + conv(channels, config["image_channels"], 3, scale)


def modes_for(device):
    low = "fp16" if device.startswith("cuda") else "bf16"
    return ["eager_fp32", f"eager_{low}_autocast", "compile_fp32"]


def single(args):
    device = args.device
    torch.backends.cudnn.benchmark = device.startswith("cuda")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model, header = rdnz.load_model(args.weights, device)
    config = header["model"]
    width, height = (int(v) for v in args.sizes.lower().split("x"))
    steps = int(args.steps)
    mode = args.mode
    autocast = None
    if mode.startswith("eager_bf16"):
        autocast = torch.bfloat16
    elif mode.startswith("eager_fp16"):
        autocast = torch.float16
    pipeline = Pipeline(model, config, device, steps, autocast, compiled=mode.startswith("compile"))
    image = synthetic_photo(width, height)

    def run_once():
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        pipeline.denoise(image)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - started

    compile_s = None
    warmup = args.warmup
    if mode.startswith("compile") and warmup == 0:
        warmup = 1  # the first call compiles; never time it
    for index in range(warmup):
        elapsed = run_once()
        if index == 0 and mode.startswith("compile"):
            compile_s = elapsed
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = [run_once() for _ in range(max(args.repeats, 1))]
    median = statistics.median(times)
    fpp = flops_per_pixel(config)
    evaluations = len(pipeline.transitions)
    executed = pipeline.executed_pixels(width, height) * fpp * evaluations
    rows, columns = pipeline.grid(width, height)
    result = {
        "backend": "pytorch",
        "mode": mode,
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "width": width,
        "height": height,
        "steps": evaluations,
        "tiles": len(rows) * len(columns),
        "tile_size": pipeline.tile,
        "warmup": warmup,
        "compile_s": compile_s,
        "times_s": times,
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "spread_pct": 100.0 * (max(times) - min(times)) / median,
        "s_per_step_per_mp": median / evaluations / (width * height / 1e6),
        "executed_flops": executed,
        "achieved_gflops": executed / median / 1e9,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "gpu_peak_allocated_mib": torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None,
    }
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--sizes", default="256x256,1024x1024,2048x2048")
    parser.add_argument("--steps", default=None, help="comma-separated [default: 1 and the weights' default]")
    parser.add_argument("--modes", default=None, help="comma-separated [default: eager_fp32, eager autocast (bf16 CPU / fp16 CUDA), compile_fp32]")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        return single(args)

    header, _ = rdnz.read(args.weights)
    steps_list = [int(s) for s in args.steps.split(",")] if args.steps else sorted({1, header["training"]["default_steps"]})
    modes = args.modes.split(",") if args.modes else modes_for(args.device)
    gpu = args.device.startswith("cuda")
    results, failed = [], []
    for mode in modes:
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.lower().split("x"))
            small = width * height <= SMALL_IMAGE
            for steps in steps_list:
                warmup = args.warmup if args.warmup is not None else (1 if small or gpu else 0)
                repeats = args.repeats if args.repeats is not None else (5 if gpu else 3 if small else 1)
                print(f"pytorch: {mode} {size} steps {steps}: {warmup} warm-up + {repeats} timed run(s)", file=sys.stderr)
                command = [sys.executable, os.path.abspath(__file__), "--single", "--weights", args.weights, "--device", args.device,
                           "--sizes", size, "--steps", str(steps), "--mode", mode, "--repeats", str(repeats), "--warmup", str(warmup)]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    reason = (done.stderr.strip().splitlines() or ["failed"])[-1]
                    print(f"pytorch:   failed: {reason}", file=sys.stderr)
                    failed.append({"mode": mode, "size": size, "steps": steps, "reason": reason})
                    continue
                result = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
                print(f"pytorch:   median {result['median_s']:.3f} s, {result['achieved_gflops']:.2f} GFLOP/s, peak RSS {result['peak_rss_mib']:.0f} MiB", file=sys.stderr)
                results.append(result)
    report = {"tool": "bench/pytorch/bench.py", "torch": torch.__version__, "device": args.device, "weights": args.weights, "results": results, "failed": failed}
    text = json.dumps(report, indent=2)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
