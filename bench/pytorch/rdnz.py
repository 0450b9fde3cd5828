"""Reader for realdenoise's `.rdnz` weights files (see src/weights.rs).

Layout, little-endian: magic b"RDNZWTS\\0" (8 bytes), format version (u32, 1),
header length L (u32), L bytes of UTF-8 JSON (architecture, model config,
training metadata, tensor table), the tensors as IEEE f16 in table order,
row-major, then a CRC-32 (IEEE) of every preceding byte.
"""

import json
import struct
import zlib

import numpy as np

MAGIC = b"RDNZWTS\0"
FORMAT_VERSION = 1
ARCHITECTURE = "realdenoise-unet"

# burn's Linear stores its weight as [in, out]; torch's as [out, in].
LINEAR_SUFFIXES = ("time_embedding.hidden.weight", "time_embedding.output.weight", "time_projection.weight")


def read(path):
    """Returns (header dict, {name: float32 ndarray}) after checking the file."""
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) < 20 or data[:8] != MAGIC:
        raise ValueError(f"{path}: not a realdenoise weights file")
    version, header_length = struct.unpack("<II", data[8:16])
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {version} is not supported")
    header = json.loads(data[16 : 16 + header_length].decode("utf-8"))
    if header["architecture"] != ARCHITECTURE:
        raise ValueError(f"{path}: architecture {header['architecture']!r}")
    count = sum(int(np.prod(entry["shape"])) for entry in header["tensors"])
    start = 16 + header_length
    end = start + 2 * count
    if len(data) != end + 4:
        raise ValueError(f"{path}: {len(data)} bytes, expected {end + 4}")
    (stored,) = struct.unpack("<I", data[end:])
    if zlib.crc32(data[:end]) & 0xFFFFFFFF != stored:
        raise ValueError(f"{path}: CRC-32 mismatch")
    values = np.frombuffer(data[start:end], dtype="<f2").astype(np.float32)
    tensors = {}
    offset = 0
    for entry in header["tensors"]:
        size = int(np.prod(entry["shape"]))
        tensors[entry["name"]] = values[offset : offset + size].reshape(entry["shape"])
        offset += size
    return header, tensors


def to_state_dict(tensors):
    """Maps burn's parameter names and layouts onto model.UNet's state dict."""
    import torch

    state = {}
    for name, value in tensors.items():
        if name.endswith(LINEAR_SUFFIXES):
            value = value.T
        state[name] = torch.from_numpy(np.ascontiguousarray(value))
    return state


def load_model(path, device="cpu"):
    """Builds model.UNet from a weights file; returns (model, header)."""
    from model import UNet

    header, tensors = read(path)
    model = UNet(**header["model"])
    missing, unexpected = model.load_state_dict(to_state_dict(tensors), strict=True), None
    del missing, unexpected
    return model.to(device).eval(), header
