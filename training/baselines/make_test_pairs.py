#!/usr/bin/env python3
"""Build a small pairs dir for trying run.py from the repo's sample images.

    .venv/bin/python make_test_pairs.py OUT_DIR [--sigma 25] [--seed 0]

Writes chelsea.clean.png (assets/sample-clean.png), chelsea.mid.noisy.png
(assets/sample-noisy.png) and chelsea.gauss<sigma>.noisy.png (clean + i.i.d.
Gaussian noise of std sigma/255, fixed seed, rounded and clipped to 8 bits).
"""
import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

ASSETS = Path(__file__).resolve().parents[2] / "assets"

ap = argparse.ArgumentParser()
ap.add_argument("out", type=Path)
ap.add_argument("--sigma", type=float, default=25.0)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
a.out.mkdir(parents=True, exist_ok=True)
shutil.copyfile(ASSETS / "sample-clean.png", a.out / "chelsea.clean.png")
shutil.copyfile(ASSETS / "sample-noisy.png", a.out / "chelsea.mid.noisy.png")
clean = np.asarray(Image.open(ASSETS / "sample-clean.png").convert("RGB")).astype(np.float64)
rng = np.random.default_rng(a.seed)
noisy = np.clip(np.round(clean + rng.normal(0.0, a.sigma, clean.shape)), 0, 255).astype(np.uint8)
Image.fromarray(noisy, "RGB").save(a.out / f"chelsea.gauss{a.sigma:g}.noisy.png")
print(f"wrote pairs to {a.out}")
