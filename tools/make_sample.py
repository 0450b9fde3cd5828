"""Makes the bundled demo photo: scikit-image's `chelsea.png` (CC0) with
seeded, signal-dependent (Poisson-Gaussian) noise, roughly like a phone photo
at high ISO. One-off asset generation, not used at run time.

    pip download --no-deps scikit-image && unzip -j scikit_image-*.whl skimage/data/chelsea.png
    python3 tools/make_sample.py chelsea.png assets/
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image

source, out = Path(sys.argv[1]), Path(sys.argv[2])
rng = np.random.default_rng(2305_04457)
clean = np.asarray(Image.open(source).convert("RGB"), dtype=np.float64) / 255.0
linear = clean ** 2.2
shot, read = 0.004, 0.0004  # variance = shot * x + read, in linear light
noisy_linear = rng.normal(linear, np.sqrt(shot * linear + read))
noisy = np.clip(noisy_linear, 0, 1) ** (1 / 2.2)
Image.fromarray(np.round(clean * 255).astype(np.uint8)).save(out / "sample-clean.png")
Image.fromarray(np.round(noisy * 255).astype(np.uint8)).save(out / "sample-noisy.png")
