"""Exports the realdenoise U-Net with our weights to ONNX (one file per input
size, static shapes) from the PyTorch port in bench/pytorch/, and checks ONNX
Runtime's output against burn's reference (`realdenoise bench
--reference-dump DIR`: a seeded 64x96 input, t = T/2, burn's S(x_t, t) on
the CPU in f32).

    python export.py --weights weights/realdenoise.rdnz --out bench/onnx/out \\
        --sizes 64x96,256x256,512x512 --reference DIR [--json check.json]

Writes OUT/realdenoise-HxW.onnx with inputs `x_t` (float32 [1, 3, H, W], 0..1)
and `t` (float32 [1], the diffusion step, 0..T) and output `x0_hat`
(float32 [1, 3, H, W]): one network evaluation, the same as burn's
`UNet::forward` and the wasm package's `Model.evaluate`.
"""

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "pytorch"))
import rdnz  # noqa: E402

TOLERANCE = 1e-3
OPSET = 18


def model_path(out, height, width):
    return os.path.join(out, f"realdenoise-{height}x{width}.onnx")


def export(model, path, height, width, timesteps):
    x_t = torch.rand(1, 3, height, width)
    t = torch.tensor([timesteps / 2.0])
    kwargs = dict(input_names=["x_t", "t"], output_names=["x0_hat"], opset_version=OPSET)
    # The padding branches of model.pad_to_multiple are decided at trace time
    # (static shapes), and the TorchScript exporter is deprecated but works.
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        # The TorchScript exporter: static shapes, no extra dependencies at run time.
        torch.onnx.export(model, (x_t, t), path, dynamo=False, **kwargs)
        exporter = "torchscript"
    except Exception as error:  # noqa: BLE001 (removed in some torch releases: use the dynamo exporter)
        print(f"export: the TorchScript exporter failed ({error}); using dynamo=True", file=sys.stderr)
        torch.onnx.export(model, (x_t, t), path, dynamo=True, external_data=False, **kwargs)
        exporter = "dynamo"
    import onnx

    onnx.checker.check_model(path)
    return exporter


def session(path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--sizes", default="64x96,256x256,512x512", help="HEIGHTxWIDTH, comma-separated (multiples of 4)")
    parser.add_argument("--reference", help="directory written by `realdenoise bench --reference-dump` (its 64x96 input)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    parser.add_argument("--json", help="write the check's result here")
    args = parser.parse_args()

    import onnxruntime

    torch.set_num_threads(2)
    model, header = rdnz.load_model(args.weights)
    timesteps = header["model"]["timesteps"]
    os.makedirs(args.out, exist_ok=True)
    exported = {}
    for size in args.sizes.split(","):
        height, width = (int(v) for v in size.lower().split("x"))
        if height % 4 or width % 4:
            raise SystemExit(f"{size}: the exported graph has no padding branch; use multiples of 4")
        path = model_path(args.out, height, width)
        started = time.perf_counter()
        exporter = export(model, path, height, width, timesteps)
        exported[f"{height}x{width}"] = {"path": path, "bytes": os.path.getsize(path), "exporter": exporter}
        print(f"export: {path} ({os.path.getsize(path) / 1e6:.2f} MB, {exporter}, {time.perf_counter() - started:.1f} s)")

    result = {
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "opset": OPSET,
        "weights": args.weights,
        "timesteps": timesteps,
        "exported": exported,
        "tolerance": args.tolerance,
    }
    if args.reference:
        x_t = np.load(os.path.join(args.reference, "x_t.npy"))
        t = np.load(os.path.join(args.reference, "t.npy")).astype(np.float32)
        burn = np.load(os.path.join(args.reference, "network.npy"))
        height, width = x_t.shape[2:]
        path = model_path(args.out, height, width)
        if not os.path.exists(path):
            export(model, path, height, width, timesteps)
        ours = session(path, 2).run(["x0_hat"], {"x_t": x_t, "t": t})[0]
        with torch.no_grad():
            eager = model(torch.from_numpy(x_t), torch.from_numpy(t)).numpy()
        result["reference"] = {
            "shape": list(x_t.shape),
            "t": float(t[0]),
            "max_abs_diff_onnxruntime_vs_burn": float(np.abs(ours - burn).max()),
            "max_abs_diff_pytorch_vs_burn": float(np.abs(eager - burn).max()),
            "max_abs_diff_onnxruntime_vs_pytorch": float(np.abs(ours - eager).max()),
        }
        result["ok"] = result["reference"]["max_abs_diff_onnxruntime_vs_burn"] <= args.tolerance
        print(f"check ({height}x{width}, t = {float(t[0]):g}): max |ONNX Runtime - burn| = {result['reference']['max_abs_diff_onnxruntime_vs_burn']:.2e}, "
              f"max |PyTorch - burn| = {result['reference']['max_abs_diff_pytorch_vs_burn']:.2e} (tolerance {args.tolerance:g})")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    if args.reference and not result["ok"]:
        print(f"FAIL: ONNX Runtime and burn differ by more than {args.tolerance}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
