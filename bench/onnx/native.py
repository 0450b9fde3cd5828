"""Native CPU side by side: one network evaluation S(x_t, t) of the same
U-Net with the same weights, timed in burn (ndarray; the CLI's hidden
`bench --network-worker`), ONNX Runtime (the exported .onnx) and PyTorch
eager, each in its own process with THREADS threads, interleaved: for every
size, every round runs burn, ONNX Runtime, PyTorch, one after another.

    python native.py --bin target/release/realdenoise --weights weights/realdenoise.rdnz \\
        --onnx-dir bench/onnx/out --sizes 256x256,512x512 --repeats 7 --json native.json

Round 0 is the cold one (the first evaluation at that size in a process that
has loaded the model, and for ONNX Runtime created the session of that
size); the median is over rounds 1..repeats. Every runtime's time is measured
inside its own process around the evaluation alone (burn: upload, forward,
read-back; ONNX Runtime: `session.run`; PyTorch: the forward under
`inference_mode`). Each runtime's output of round 0 is compared with burn's.

The workers (`--worker ort|torch`) speak the same line protocol as burn's:
`eval WIDTH HEIGHT T INPUT [OUTPUT]` -> `ms MILLISECONDS`; `quit`.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
RUNTIMES = ("burn", "onnxruntime", "pytorch")


# --------------------------------------------------------------------------
# Workers


def worker(kind, weights, onnx_dir, threads):
    if kind == "torch":
        import torch

        sys.path.insert(0, os.path.join(here, "..", "pytorch"))
        import rdnz

        torch.set_num_threads(threads)
        model, _ = rdnz.load_model(weights)
        version = f"torch {torch.__version__}"
    else:
        import onnxruntime as ort

        sys.path.insert(0, here)
        from export import model_path, session

        sessions = {}
        version = f"onnxruntime {ort.__version__}"
    inputs = {}
    print(f"ready {version}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] == "session":  # ONNX Runtime: create the session of a size beforehand (timed)
            height, width = int(words[2]), int(words[1])
            started = time.perf_counter()
            sessions[(height, width)] = session(model_path(onnx_dir, height, width), threads)
            print(f"ms {(time.perf_counter() - started) * 1e3}", flush=True)
            continue
        _, width, height, t, path, *output = words
        width, height = int(width), int(height)
        if path not in inputs:
            inputs[path] = np.fromfile(path, dtype="<f4").reshape(1, 3, height, width)
        x_t = inputs[path]
        t_array = np.array([float(t)], dtype=np.float32)
        if kind == "torch":
            x = torch.from_numpy(x_t)
            t_tensor = torch.from_numpy(t_array)
            started = time.perf_counter()
            with torch.inference_mode():
                result = model(x, t_tensor)
            elapsed = time.perf_counter() - started
            result = result.numpy()
        else:
            run = sessions[(height, width)]
            started = time.perf_counter()
            result = run.run(["x0_hat"], {"x_t": x_t, "t": t_array})[0]
            elapsed = time.perf_counter() - started
        if output:
            np.ascontiguousarray(result, dtype="<f4").tofile(output[0])
        print(f"ms {elapsed * 1e3}", flush=True)


class Worker:
    def __init__(self, name, command, env):
        self.name = name
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.hello = self._read()

    def _read(self):
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name}: the worker stopped (exit status {self.process.wait()})")
        return line.strip()

    def ask(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self._read()
        if not answer.startswith("ms "):
            raise SystemExit(f"{self.name}: unexpected answer {answer!r} to {command!r}")
        return float(answer[3:])

    def close(self):
        try:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        self.process.wait(timeout=60)


# --------------------------------------------------------------------------
# Driver


def synthetic_input(height, width, seed=20):
    """Seeded x_t in 0..1: a smooth gradient with noise, like a noisy photo."""
    rng = np.random.default_rng(seed)
    ys, xs = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    base = np.stack([0.2 + 0.6 * xs, 0.2 + 0.6 * ys, 0.5 + 0.3 * np.sin(6 * xs + 4 * ys)])
    return np.clip(base + 0.15 * rng.standard_normal((3, height, width)), 0, 1).astype(np.float32)[None]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["ort", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--bin", help="the realdenoise CLI")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--onnx-dir", required=True)
    parser.add_argument("--sizes", default="256x256,512x512", help="WIDTHxHEIGHT, comma-separated")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds after the cold one")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between two evaluations (lets spinning thread pools go idle)")
    parser.add_argument("--work", default=os.path.join(here, "out", "native"), help="inputs and outputs go here")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.weights, args.onnx_dir, args.threads)
        return
    if not args.bin:
        parser.error("--bin is required")

    sys.path.insert(0, os.path.join(here, "..", "pytorch"))
    import rdnz

    header, _ = rdnz.read(args.weights)
    timesteps = header["model"]["timesteps"]
    t = timesteps // 2
    os.makedirs(args.work, exist_ok=True)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), MATMUL_NUM_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads))
    python = sys.executable
    common = ["--weights", args.weights, "--onnx-dir", args.onnx_dir, "--threads", str(args.threads)]
    workers = {
        "burn": Worker("burn", [args.bin, "bench", "--network-worker", "--weights", args.weights], env),
        "onnxruntime": Worker("onnxruntime", [python, __file__, "--worker", "ort", *common], env),
        "pytorch": Worker("pytorch", [python, __file__, "--worker", "torch", *common], env),
    }
    load_before = os.getloadavg()[0]
    sizes = [tuple(int(v) for v in size.lower().split("x")) for size in args.sizes.split(",")]
    results = []
    try:
        for width, height in sizes:
            x_t = synthetic_input(height, width)
            path = os.path.join(args.work, f"x_t-{width}x{height}.f32")
            x_t.tofile(path)
            session_ms = workers["onnxruntime"].ask(f"session {width} {height}")
            times = {name: [] for name in RUNTIMES}
            outputs = {}
            for round_ in range(args.repeats + 1):
                for name in RUNTIMES:
                    time.sleep(args.pause)
                    command = f"eval {width} {height} {t} {path}"
                    if round_ == 0:
                        outputs[name] = os.path.join(args.work, f"{name}-{width}x{height}.f32")
                        command += f" {outputs[name]}"
                    times[name].append(workers[name].ask(command))
                print(f"{width}x{height} round {round_}: " + ", ".join(f"{n} {times[n][-1]:.1f} ms" for n in RUNTIMES), flush=True)
            burn = np.fromfile(outputs["burn"], dtype="<f4")
            for name in RUNTIMES:
                warm = times[name][1:]
                diff = float(np.abs(np.fromfile(outputs[name], dtype="<f4") - burn).max())
                results.append({
                    "runtime": name, "width": width, "height": height, "t": t,
                    "cold_ms": times[name][0], "median_ms": statistics.median(warm), "min_ms": min(warm), "max_ms": max(warm),
                    "times_ms": times[name], "max_abs_diff_vs_burn": diff,
                    **({"session_create_ms": session_ms} if name == "onnxruntime" else {}),
                })
    finally:
        for w in workers.values():
            w.close()
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "threads": args.threads,
        "repeats": args.repeats,
        "versions": {name: w.hello.removeprefix("ready ") for name, w in workers.items()},
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "results": results,
    }
    report["versions"]["burn"] = "burn 0.21 ndarray (realdenoise CLI)"
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


if __name__ == "__main__":
    main()
