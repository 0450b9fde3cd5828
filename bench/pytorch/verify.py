"""Checks the PyTorch port against burn: loads the reference that
`realdenoise bench --reference-dump DIR` wrote and compares the network
output S(x_t, t) and the 4-step improved-sampler output.

    python verify.py --dump DIR --weights weights/realdenoise-untrained.rdnz [--device cuda] [--json out.json]
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rdnz  # noqa: E402
from model import sample_improved  # noqa: E402

TOLERANCE = 1e-3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", required=True, help="directory written by `realdenoise bench --reference-dump`")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    parser.add_argument("--json", help="write the differences here")
    args = parser.parse_args()

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    meta = json.load(open(os.path.join(args.dump, "meta.json")))
    model, header = rdnz.load_model(args.weights, args.device)
    x_t = torch.from_numpy(np.load(os.path.join(args.dump, "x_t.npy"))).to(args.device)
    t = torch.from_numpy(np.load(os.path.join(args.dump, "t.npy"))).to(args.device)
    burn_network = np.load(os.path.join(args.dump, "network.npy"))
    burn_sample = np.load(os.path.join(args.dump, "sample4.npy"))
    with torch.no_grad():
        network = model(x_t, t).cpu().numpy()
        sample = sample_improved(model, x_t, meta["steps"], meta["strength"]).cpu().numpy()
    result = {
        "device": args.device,
        "shape": list(x_t.shape),
        "t": float(t[0]),
        "network_max_abs_diff": float(np.abs(network - burn_network).max()),
        "sample4_max_abs_diff": float(np.abs(sample - burn_sample).max()),
        "network_output_range": [float(burn_network.min()), float(burn_network.max())],
        "tolerance": args.tolerance,
    }
    result["ok"] = result["network_max_abs_diff"] <= args.tolerance and result["sample4_max_abs_diff"] <= args.tolerance
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    if not result["ok"]:
        print(f"FAIL: PyTorch and burn differ by more than {args.tolerance}", file=sys.stderr)
        sys.exit(1)
    print(f"OK: max abs diff network {result['network_max_abs_diff']:.2e}, 4-step sampler {result['sample4_max_abs_diff']:.2e} (tolerance {args.tolerance})")


if __name__ == "__main__":
    main()
