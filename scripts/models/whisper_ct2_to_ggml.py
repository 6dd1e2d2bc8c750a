#!/usr/bin/env python3
"""Convert a Whisper model in CTranslate2 format into whisper.cpp's ggml format.

Standard library only (Python >= 3.11): no numpy, no torch.

Usage:
    whisper_ct2_to_ggml.py --ct2-dir DIR --assets DIR --out FILE.bin

  --ct2-dir  CTranslate2 model directory (model.bin, config.json, optionally
             vocabulary.txt), e.g. faster-whisper's tiny.en.
  --assets   openai-whisper's ``whisper/assets`` directory (mel_filters.npz,
             gpt2.tiktoken, multilingual.tiktoken).
  --out      output ggml file (the "ggml-model.bin" whisper.cpp loads).

The output has the layout written by whisper.cpp's models/convert-pt-to-ggml.py
(f16 mode): magic, 11 int32 hparams, mel filters, tokenizer, then every tensor
with the names of openai-whisper's PyTorch state dict, in that state dict's
order. 2-D/3-D weights are f16; 1-D tensors, conv biases (reshaped to (n, 1))
and both positional embeddings are f32.

CTranslate2 layout notes (python/ctranslate2/specs/*.py in CTranslate2):
  * model.bin: u32 binary version, string spec name, u32 spec revision,
    u32 variable count, per variable: string name, u8 rank, u32 dims[rank],
    u8 dtype id, u32 byte count, raw bytes; then u32 alias count and
    (alias, target) string pairs. Strings are u16 length (including a
    trailing NUL) + bytes. All little-endian.
  * Self-attention Q/K/V are fused into linear_0 (rows: Q, K, V); the
    cross-attention K/V are fused into linear_1 (rows: K, V). Whisper's key
    projection has no bias: CTranslate2 stores zeros there. Dropping a key bias
    is exact anyway (q.b is constant over keys, softmax ignores it).
  * The output projection is tied to the token embedding (usually stored as an
    alias); whisper.cpp always uses the token embedding, so an untied,
    different projection cannot be represented and is rejected.

The output is deterministic: the same inputs give a byte-identical file. Its
sha256 is printed at the end.
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import json
import math
import os
import re
import struct
import sys
import tempfile
import zipfile
from pathlib import Path

GGML_MAGIC = 0x67676D6C  # "ggml"

# CTranslate2 DataType enum order (include/ctranslate2/types.h).
CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
CT2_ITEM_SIZE = {"float32": 4, "int8": 1, "int16": 2, "int32": 4, "float16": 2, "bfloat16": 2}
# Old binaries (version < 4) only stored the item size.
CT2_DTYPE_FROM_ITEM_SIZE = {4: "float32", 2: "int16", 1: "int8"}
CT2_MAX_BINARY_VERSION = 6

# common_spec.Activation enum.
CT2_ACTIVATION_GELU = 3

GGML_F32 = 0
GGML_F16 = 1


def fail(msg: str) -> "NoReturn":  # noqa: F821
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------
# CTranslate2 model.bin reader
# --------------------------------------------------------------------------


class Var:
    """One CTranslate2 variable: shape, dtype name and raw little-endian bytes."""

    __slots__ = ("name", "shape", "dtype", "data")

    def __init__(self, name: str, shape: tuple[int, ...], dtype: str, data: bytes):
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.data = data

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def scalar(self):
        if self.numel != 1:
            fail(f"{self.name}: expected a scalar, got shape {self.shape}")
        return self.values()[0]

    def values(self) -> list:
        """Decoded values as Python numbers (row-major)."""
        n = self.numel
        if self.dtype == "float32":
            return list(struct.unpack(f"<{n}f", self.data))
        if self.dtype == "float16":
            return list(struct.unpack(f"<{n}e", self.data))
        if self.dtype == "bfloat16":
            raw = struct.unpack(f"<{n}H", self.data)
            return list(struct.unpack(f"<{n}f", struct.pack(f"<{n}I", *(h << 16 for h in raw))))
        if self.dtype == "int8":
            return list(struct.unpack(f"<{n}b", self.data))
        if self.dtype == "int16":
            return list(struct.unpack(f"<{n}h", self.data))
        if self.dtype == "int32":
            return list(struct.unpack(f"<{n}i", self.data))
        fail(f"{self.name}: unsupported dtype {self.dtype}")


class Reader:
    def __init__(self, data: bytes, path: Path):
        self.data = data
        self.pos = 0
        self.path = path

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            fail(f"{self.path}: truncated file (wanted {n} bytes at offset {self.pos})")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def string(self) -> str:
        n = self.u16()
        raw = self.take(n)
        if raw.endswith(b"\0"):
            raw = raw[:-1]
        return raw.decode("utf-8")


def read_ct2_model(path: Path) -> tuple[dict[str, Var], dict]:
    """Parse model.bin; returns (variables with aliases resolved, header info)."""
    r = Reader(path.read_bytes(), path)
    version = r.u32()
    if version < 1 or version > CT2_MAX_BINARY_VERSION:
        fail(f"{path}: unsupported CTranslate2 binary version {version}")
    if version >= 2:
        spec = r.string()
        revision = r.u32()
    else:
        spec, revision = "", 1
    variables: dict[str, Var] = {}
    for _ in range(r.u32()):
        name = r.string()
        rank = r.u8()
        shape = tuple(r.u32() for _ in range(rank))
        if version >= 4:
            type_id = r.u8()
            if type_id >= len(CT2_DTYPES):
                fail(f"{path}: {name}: unknown dtype id {type_id}")
            dtype = CT2_DTYPES[type_id]
            nbytes = r.u32()
        else:
            item = r.u8()
            dtype = CT2_DTYPE_FROM_ITEM_SIZE.get(item) or fail(f"{name}: item size {item}")
            nbytes = r.u32() * item
        expect = math.prod(shape) * CT2_ITEM_SIZE[dtype]
        if nbytes != expect:
            fail(f"{path}: {name}: {nbytes} bytes for shape {shape} {dtype} (expected {expect})")
        variables[name] = Var(name, shape, dtype, r.take(nbytes))
    aliases: dict[str, str] = {}
    if version >= 3:
        for _ in range(r.u32()):
            alias = r.string()
            aliases[alias] = r.string()
    if r.pos != len(r.data):
        warn(f"{path}: {len(r.data) - r.pos} trailing bytes ignored")
    # Resolve aliases (possibly chained) into full entries.
    for alias in aliases:
        target, seen = aliases[alias], {alias}
        while target in aliases and target not in variables:
            if target in seen:
                fail(f"{path}: alias cycle at {alias}")
            seen.add(target)
            target = aliases[target]
        if target not in variables:
            fail(f"{path}: alias {alias} -> {aliases[alias]} points to nothing")
        v = variables[target]
        variables[alias] = Var(alias, v.shape, v.dtype, v.data)
    info = {"binary_version": version, "spec": spec, "revision": revision, "aliases": aliases}
    return variables, info


# --------------------------------------------------------------------------
# Tensor helpers (raw bytes; f16 stays a byte copy when possible)
# --------------------------------------------------------------------------


def _dequantized_floats(v: Var, variables: dict[str, Var]) -> list[float]:
    """Float values of v, undoing CTranslate2 int8/int16 weight quantization."""
    if v.dtype in ("float32", "float16", "bfloat16"):
        return v.values()
    scale = variables.get(v.name + "_scale")
    if v.dtype in ("int8", "int16") and scale is not None:
        q = v.values()
        s = scale.values()
        if len(s) == 1:
            return [x / s[0] for x in q]
        rows = v.shape[0]
        cols = v.numel // rows
        if len(s) != rows:
            fail(f"{v.name}: scale has {len(s)} values for {rows} rows")
        return [q[i] / s[i // cols] for i in range(len(q))]
    fail(f"{v.name}: cannot convert dtype {v.dtype} to float")


def to_f16_bytes(v: Var, variables: dict[str, Var]) -> bytes:
    if v.dtype == "float16":
        return v.data
    vals = _dequantized_floats(v, variables)
    return struct.pack(f"<{len(vals)}e", *vals)


def to_f32_bytes(v: Var, variables: dict[str, Var]) -> bytes:
    if v.dtype == "float32":
        return v.data
    vals = _dequantized_floats(v, variables)
    return struct.pack(f"<{len(vals)}f", *vals)


def row_slice(v: Var, start: int, stop: int, name: str) -> Var:
    """Rows [start, stop) of a tensor along dim 0 (used to split fused Q/K/V)."""
    rows = v.shape[0]
    if not (0 <= start < stop <= rows):
        fail(f"{v.name}: bad row slice {start}:{stop} of {rows}")
    row_bytes = len(v.data) // rows
    data = v.data[start * row_bytes : stop * row_bytes]
    return Var(name, (stop - start,) + v.shape[1:], v.dtype, data)


def row_slice_scaled(v: Var, start: int, stop: int, variables: dict[str, Var]) -> dict[str, Var]:
    """Like row_slice, also slicing a per-row quantization scale if there is one."""
    out = {"w": row_slice(v, start, stop, v.name)}
    scale = variables.get(v.name + "_scale")
    if scale is not None and scale.numel == v.shape[0]:
        out["s"] = row_slice(scale, start, stop, v.name + "_scale")
    elif scale is not None:
        out["s"] = scale
    return out


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> bytes:
    """openai-whisper's encoder positional embedding, as f32 bytes (fallback only)."""
    half = channels // 2
    inc = math.log(max_timescale) / (half - 1)
    inv = [math.exp(-inc * i) for i in range(half)]
    vals: list[float] = []
    for t in range(length):
        row = [t * f for f in inv]
        vals.extend(math.sin(x) for x in row)
        vals.extend(math.cos(x) for x in row)
    return struct.pack(f"<{len(vals)}f", *vals)


# --------------------------------------------------------------------------
# Assets: mel filters (.npz) and tokenizer (.tiktoken)
# --------------------------------------------------------------------------


def read_npy(raw: bytes, what: str) -> tuple[tuple[int, ...], list[float]]:
    if raw[:6] != b"\x93NUMPY":
        fail(f"{what}: not a .npy file")
    major = raw[6]
    if major == 1:
        hlen = struct.unpack("<H", raw[8:10])[0]
        start = 10
    elif major in (2, 3):
        hlen = struct.unpack("<I", raw[8:12])[0]
        start = 12
    else:
        fail(f"{what}: unsupported .npy version {major}")
    header = ast.literal_eval(raw[start : start + hlen].decode("latin1"))
    descr, fortran, shape = header["descr"], header["fortran_order"], tuple(header["shape"])
    body = raw[start + hlen :]
    n = math.prod(shape)
    fmt = {"<f4": "f", "<f8": "d", "<f2": "e", ">f4": "f", ">f8": "d", ">f2": "e"}.get(descr)
    if fmt is None:
        fail(f"{what}: unsupported dtype {descr}")
    endian = ">" if descr.startswith(">") else "<"
    vals = list(struct.unpack(f"{endian}{n}{fmt}", body[: n * struct.calcsize(fmt)]))
    if fortran and len(shape) == 2:
        r, c = shape
        vals = [vals[j * r + i] for i in range(r) for j in range(c)]
    elif fortran and len(shape) > 2:
        fail(f"{what}: fortran-order arrays of rank > 2 are not supported")
    return shape, vals


def read_mel_filters(assets: Path, n_mels: int) -> tuple[int, int, bytes]:
    path = assets / "mel_filters.npz"
    key = f"mel_{n_mels}.npy"
    with zipfile.ZipFile(path) as z:
        if key not in z.namelist():
            fail(f"{path}: no {key} (has {z.namelist()})")
        shape, vals = read_npy(z.read(key), f"{path}:{key}")
    if len(shape) != 2 or shape[0] != n_mels:
        fail(f"{path}:{key}: unexpected shape {shape}")
    return shape[0], shape[1], struct.pack(f"<{len(vals)}f", *vals)


def read_tiktoken(path: Path) -> list[bytes]:
    """Token bytes ordered by rank; ranks must be exactly 0..n-1."""
    by_rank: dict[int, bytes] = {}
    for lineno, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            fail(f"{path}:{lineno}: expected '<base64> <rank>'")
        tok, rank = base64.b64decode(parts[0], validate=True), int(parts[1])
        if rank in by_rank:
            fail(f"{path}:{lineno}: duplicate rank {rank}")
        by_rank[rank] = tok
    n = len(by_rank)
    if sorted(by_rank) != list(range(n)):
        fail(f"{path}: ranks are not contiguous 0..{n - 1}")
    return [by_rank[i] for i in range(n)]


def gpt2_byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode (used to check vocabulary.txt)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def check_vocabulary(ct2_dir: Path, tokens: list[bytes]) -> None:
    """Cross-check the tiktoken vocab against the CT2 model's vocabulary.txt."""
    path = ct2_dir / "vocabulary.txt"
    if not path.is_file():
        return
    words = path.read_text(encoding="utf-8").split("\n")
    if words and words[-1] == "":
        words.pop()
    dec = gpt2_byte_decoder()
    mismatches = 0
    for i, tok in enumerate(tokens):
        if i >= len(words):
            break
        w = words[i]
        try:
            b = bytes(dec[c] for c in w)
        except KeyError:
            b = w.encode("utf-8")  # special token, e.g. <|endoftext|>
        if b != tok:
            mismatches += 1
            if mismatches <= 3:
                warn(f"vocabulary.txt[{i}] = {w!r} differs from tiktoken {tok!r}")
    if mismatches:
        fail(f"{mismatches} tokens of {path} differ from the tiktoken file: wrong --assets tokenizer?")
    print(f"vocab check: first {min(len(tokens), len(words))} tokens match {path.name}")


# --------------------------------------------------------------------------
# Mapping CT2 -> whisper state dict
# --------------------------------------------------------------------------


class Out:
    """Ordered list of output tensors: (name, ggml dims (torch order), ftype, bytes)."""

    def __init__(self, variables: dict[str, Var]):
        self.v = variables
        self.items: list[tuple[str, tuple[int, ...], int, bytes]] = []
        self.used: set[str] = set()

    def get(self, name: str) -> Var:
        if name not in self.v:
            fail(f"model.bin has no variable {name}")
        self.used.add(name)
        if name + "_scale" in self.v:
            self.used.add(name + "_scale")
        return self.v[name]

    def add(self, name: str, var: Var, shape: tuple[int, ...] | None = None,
            force_f32: bool = False, scale: Var | None = None) -> None:
        shape = tuple(shape if shape is not None else var.shape)
        if math.prod(shape) != var.numel:
            fail(f"{name}: cannot reshape {var.shape} to {shape}")
        # Same rule as convert-pt-to-ggml.py (use_f16): f32 for 1-D tensors,
        # conv biases and positional embeddings; f16 for everything else.
        lookup = dict(self.v)
        if scale is not None:
            lookup[var.name + "_scale"] = scale
        if force_f32 or len(shape) < 2:
            self.items.append((name, shape, GGML_F32, to_f32_bytes(var, lookup)))
        else:
            self.items.append((name, shape, GGML_F16, to_f16_bytes(var, lookup)))

    def add_raw_f32(self, name: str, shape: tuple[int, ...], data: bytes) -> None:
        self.items.append((name, shape, GGML_F32, data))


def add_linear(out: Out, dst: str, src: str, rows: tuple[int, int] | None = None,
               bias: bool = True) -> float:
    """Add dst.weight/dst.bias from CT2 linear `src`, optionally a row range of a
    fused projection. Returns the max |value| of a dropped bias (0 if none)."""
    w = out.get(f"{src}/weight")
    b = out.get(f"{src}/bias") if f"{src}/bias" in out.v else None
    scale = None
    if rows is not None:
        sl = row_slice_scaled(w, rows[0], rows[1], out.v)
        w, scale = sl["w"], sl.get("s")
        if b is not None:
            b = row_slice(b, rows[0], rows[1], b.name)
    else:
        scale = out.v.get(f"{src}/weight_scale")
    out.add(f"{dst}.weight", w, scale=scale)
    if bias:
        if b is None:
            fail(f"{src}: missing bias needed for {dst}.bias")
        out.add(f"{dst}.bias", b)
        return 0.0
    if b is None:
        return 0.0
    return max((abs(x) for x in b.values()), default=0.0)


def add_layer_norm(out: Out, dst: str, src: str) -> None:
    out.add(f"{dst}.weight", out.get(f"{src}/gamma"))
    out.add(f"{dst}.bias", out.get(f"{src}/beta"))


def count_layers(variables: dict[str, Var], prefix: str) -> int:
    idx = set()
    pat = re.compile(re.escape(prefix) + r"/layer_(\d+)/")
    for name in variables:
        m = pat.match(name)
        if m:
            idx.add(int(m.group(1)))
    n = len(idx)
    if sorted(idx) != list(range(n)):
        fail(f"{prefix}: non-contiguous layer indices {sorted(idx)}")
    return n


def check_flag(variables: dict[str, Var], name: str, expected, what: str) -> None:
    if name in variables:
        got = variables[name].scalar()
        if got != expected:
            fail(f"{name} = {got}: {what} is not what whisper.cpp implements")


def convert(ct2_dir: Path, assets: Path, out_path: Path) -> None:
    model_path = ct2_dir / "model.bin"
    variables, info = read_ct2_model(model_path)
    print(f"ct2: binary version {info['binary_version']}, spec {info['spec']!r} "
          f"revision {info['revision']}, {len(variables) - len(info['aliases'])} variables, "
          f"{len(info['aliases'])} aliases {info['aliases']}")
    if info["spec"] not in ("WhisperSpec", ""):
        fail(f"spec {info['spec']!r} is not a Whisper model")
    if any("/linear_0a/" in n or "/linear_0b/" in n for n in variables):
        fail("low-rank (lite-whisper) models are not supported by whisper.cpp")

    # Architecture flags whisper.cpp hard-codes.
    check_flag(variables, "decoder/activation", CT2_ACTIVATION_GELU, "the activation")
    check_flag(variables, "decoder/pre_norm", 1, "post-norm")
    check_flag(variables, "decoder/scale_embeddings", 0, "embedding scaling")
    check_flag(variables, "decoder/alibi", 0, "ALiBi")
    check_flag(variables, "decoder/start_from_zero_embedding", 0, "a zero start embedding")

    # ---- hyperparameters (from tensor shapes, cross-checked with config.json)
    emb = variables.get("decoder/embeddings/weight") or fail("no decoder/embeddings/weight")
    n_vocab, n_text_state = emb.shape
    conv1 = variables.get("encoder/conv1/weight") or fail("no encoder/conv1/weight")
    n_audio_state, n_mels, k1 = conv1.shape
    if k1 != 3:
        fail(f"encoder/conv1 kernel size {k1} != 3")
    n_audio_layer = count_layers(variables, "encoder")
    n_text_layer = count_layers(variables, "decoder")
    n_audio_head = int(variables["encoder/num_heads"].scalar()) if "encoder/num_heads" in variables else None
    n_text_head = int(variables["decoder/num_heads"].scalar()) if "decoder/num_heads" in variables else None
    if n_audio_head is None or n_text_head is None:
        fail("model.bin lacks encoder/num_heads or decoder/num_heads")
    enc_pe = variables.get("encoder/position_encodings/encodings")
    n_audio_ctx = enc_pe.shape[0] if enc_pe is not None else 1500
    dec_pe = variables.get("decoder/position_encodings/encodings") or fail(
        "no decoder/position_encodings/encodings (whisper's decoder positions are learned)")
    n_text_ctx = dec_pe.shape[0]
    if n_audio_state != n_text_state:
        fail(f"n_audio_state {n_audio_state} != n_text_state {n_text_state}")
    if enc_pe is not None and enc_pe.shape != (n_audio_ctx, n_audio_state):
        fail(f"encoder position encodings shape {enc_pe.shape}")
    if dec_pe.shape[1] != n_text_state:
        fail(f"decoder position encodings shape {dec_pe.shape}")
    config_path = ct2_dir / "config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        lang_ids = config.get("lang_ids") or []
        if lang_ids and max(lang_ids) >= n_vocab:
            fail(f"config.json lang_ids go up to {max(lang_ids)} but n_vocab is {n_vocab}")
    hparams = {
        "n_vocab": n_vocab, "n_audio_ctx": n_audio_ctx, "n_audio_state": n_audio_state,
        "n_audio_head": n_audio_head, "n_audio_layer": n_audio_layer, "n_text_ctx": n_text_ctx,
        "n_text_state": n_text_state, "n_text_head": n_text_head, "n_text_layer": n_text_layer,
        "n_mels": n_mels,
    }
    print("hparams:", hparams)

    # ---- tied output projection
    proj = variables.get("decoder/projection/weight")
    if proj is not None:
        if info["aliases"].get("decoder/projection/weight") != "decoder/embeddings/weight" and (
                proj.shape != emb.shape or proj.dtype != emb.dtype or proj.data != emb.data):
            fail("decoder/projection/weight differs from the token embedding; "
                 "whisper.cpp only supports a tied output projection")
    if "decoder/projection/bias" in variables:
        if any(x != 0 for x in variables["decoder/projection/bias"].values()):
            fail("decoder/projection/bias is non-zero; whisper.cpp has no output bias")

    # ---- tensors, in openai-whisper state-dict order
    out = Out(variables)
    out.used.update(n for n in variables if n.startswith("decoder/projection/"))
    out.used.update(n for n in variables if n.endswith(("/num_heads", "/activation", "/alibi",
                    "/pre_norm", "/scale_embeddings", "/start_from_zero_embedding",
                    "/alignment_heads", "/alignment_layer")))
    d = n_audio_state
    dropped_key_bias = 0.0

    # encoder: own buffer first, then conv1, conv2, blocks, ln_post
    if enc_pe is not None:
        out.add("encoder.positional_embedding", out.get("encoder/position_encodings/encodings"),
                force_f32=True)
    else:
        warn("no encoder position encodings in model.bin: computing whisper's sinusoids")
        out.add_raw_f32("encoder.positional_embedding", (n_audio_ctx, d), sinusoids(n_audio_ctx, d))
    for i in (1, 2):
        out.add(f"encoder.conv{i}.weight", out.get(f"encoder/conv{i}/weight"))
        bias = out.get(f"encoder/conv{i}/bias")
        out.add(f"encoder.conv{i}.bias", bias, shape=(bias.numel, 1), force_f32=True)
    for i in range(n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        sa = f"{src}/self_attention"
        if out.v[f"{sa}/linear_0/weight"].shape[0] != 3 * d:
            fail(f"{sa}/linear_0 is not a fused QKV projection")
        add_linear(out, f"{dst}.attn.query", f"{sa}/linear_0", (0, d))
        dropped_key_bias = max(dropped_key_bias,
                               add_linear(out, f"{dst}.attn.key", f"{sa}/linear_0", (d, 2 * d), bias=False))
        add_linear(out, f"{dst}.attn.value", f"{sa}/linear_0", (2 * d, 3 * d))
        add_linear(out, f"{dst}.attn.out", f"{sa}/linear_1")
        add_layer_norm(out, f"{dst}.attn_ln", f"{sa}/layer_norm")
        add_linear(out, f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        add_linear(out, f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        add_layer_norm(out, f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
    add_layer_norm(out, "encoder.ln_post", "encoder/layer_norm")

    # decoder: own parameter first, then token_embedding, blocks, ln
    out.add("decoder.positional_embedding", out.get("decoder/position_encodings/encodings"),
            force_f32=True)
    out.add("decoder.token_embedding.weight", out.get("decoder/embeddings/weight"),
            scale=variables.get("decoder/embeddings/weight_scale"))
    for i in range(n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        sa, ca = f"{src}/self_attention", f"{src}/attention"
        if out.v[f"{sa}/linear_0/weight"].shape[0] != 3 * d:
            fail(f"{sa}/linear_0 is not a fused QKV projection")
        if out.v[f"{ca}/linear_1/weight"].shape[0] != 2 * d:
            fail(f"{ca}/linear_1 is not a fused KV projection")
        add_linear(out, f"{dst}.attn.query", f"{sa}/linear_0", (0, d))
        dropped_key_bias = max(dropped_key_bias,
                               add_linear(out, f"{dst}.attn.key", f"{sa}/linear_0", (d, 2 * d), bias=False))
        add_linear(out, f"{dst}.attn.value", f"{sa}/linear_0", (2 * d, 3 * d))
        add_linear(out, f"{dst}.attn.out", f"{sa}/linear_1")
        add_layer_norm(out, f"{dst}.attn_ln", f"{sa}/layer_norm")
        add_linear(out, f"{dst}.cross_attn.query", f"{ca}/linear_0")
        dropped_key_bias = max(dropped_key_bias,
                               add_linear(out, f"{dst}.cross_attn.key", f"{ca}/linear_1", (0, d), bias=False))
        add_linear(out, f"{dst}.cross_attn.value", f"{ca}/linear_1", (d, 2 * d))
        add_linear(out, f"{dst}.cross_attn.out", f"{ca}/linear_2")
        add_layer_norm(out, f"{dst}.cross_attn_ln", f"{ca}/layer_norm")
        add_linear(out, f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        add_linear(out, f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        add_layer_norm(out, f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
    add_layer_norm(out, "decoder.ln", "decoder/layer_norm")

    if dropped_key_bias:
        warn(f"dropped a non-zero key bias (max |b| = {dropped_key_bias:g}); "
             "this does not change attention (softmax is shift-invariant per query)")
    unused = sorted(set(variables) - out.used)
    if unused:
        fail(f"model.bin variables not mapped to whisper tensors: {unused}")

    # whisper_model_load requires every tensor exactly once:
    # encoder 7 + 15/layer, decoder 4 + 24/layer.
    if len(out.items) != 7 + 15 * n_audio_layer + 4 + 24 * n_text_layer:
        fail(f"internal: produced {len(out.items)} tensors")
    if len({name for name, *_ in out.items}) != len(out.items):
        fail("internal: duplicate tensor names")

    # ---- assets
    n_mel_rows, n_fft, mel_bytes = read_mel_filters(assets, n_mels)
    # whisper's own rule (tokenizer.py / whisper.cpp is_multilingual)
    tok_name = "multilingual.tiktoken" if n_vocab >= 51865 else "gpt2.tiktoken"
    if not (assets / tok_name).is_file():
        fail(f"{assets / tok_name} not found")
    tokens = read_tiktoken(assets / tok_name)
    print(f"tokenizer: {tok_name}, {len(tokens)} tokens; mel filters {n_mel_rows}x{n_fft}")
    check_vocabulary(ct2_dir, tokens)

    # ---- write
    out_path.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=out_path.name + ".", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            def w(b: bytes) -> None:
                f.write(b)
                h.update(b)

            w(struct.pack("<i", GGML_MAGIC))
            for key in ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
                        "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels"):
                w(struct.pack("<i", hparams[key]))
            w(struct.pack("<i", 1))  # ftype: mostly f16, as convert-pt-to-ggml.py
            w(struct.pack("<ii", n_mel_rows, n_fft))
            w(mel_bytes)
            w(struct.pack("<i", len(tokens)))
            for tok in tokens:
                w(struct.pack("<i", len(tok)))
                w(tok)
            for name, shape, ftype, data in out.items:
                nb = name.encode("utf-8")
                w(struct.pack("<iii", len(shape), len(nb), ftype))
                for dim in reversed(shape):  # ggml ne[0] is the innermost dimension
                    w(struct.pack("<i", dim))
                w(nb)
                item = 4 if ftype == GGML_F32 else 2
                if len(data) != math.prod(shape) * item:
                    fail(f"internal: {name} has {len(data)} bytes for {shape}")
                w(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp creates 0600
        os.replace(tmp_name, out_path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    size = out_path.stat().st_size
    print(f"wrote {out_path}: {len(out.items)} tensors, {size} bytes")
    print(f"sha256 {h.hexdigest()}  {out_path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ct2-dir", required=True, type=Path, help="CTranslate2 model directory")
    p.add_argument("--assets", required=True, type=Path, help="openai-whisper whisper/assets directory")
    p.add_argument("--out", required=True, type=Path, help="output ggml .bin file")
    a = p.parse_args()
    if not (a.ct2_dir / "model.bin").is_file():
        fail(f"{a.ct2_dir}/model.bin not found")
    if not (a.assets / "mel_filters.npz").is_file():
        fail(f"{a.assets}/mel_filters.npz not found (--assets is openai-whisper's whisper/assets)")
    convert(a.ct2_dir, a.assets, a.out)


if __name__ == "__main__":
    main()
