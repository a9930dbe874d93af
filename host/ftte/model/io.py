"""FTTE's model files: save and load a Model, and its weights as C source for the firmware.

A model directory holds `manifest.json` (layer names, operators, shapes, window geometry,
parameter groups with their sizes, the layout hash, where the model came from) and
`weights.npz` (one array per parameter group, in the C layouts, plus the layout hash). A single
`.npz` file holds the same arrays with the manifest inside. The layout hash is the C one
(`ftte_model_layout_hash`, via LayerTable): the only place this module calls C, lazily.

`write_c_source()` emits `ftte_model_data.h/.c`: the weights as `const float` arrays (they
stay in flash), the `const ftte_layer` table and an `ftte_model` over it, and
`FTTE_MODEL_LAYOUT_HASH`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ftte.model.layers import Layer
from ftte.model.model import Model

FORMAT = "ftte-model"
VERSION = 1
MANIFEST, WEIGHTS = "manifest.json", "weights.npz"
_HASH_KEY, _MANIFEST_KEY = "__layout_hash__", "__manifest__"


class ModelFileError(ValueError):
    """A model file that is corrupt, inconsistent, or for another layout."""


def layout_hash(model: Model) -> int:
    """The C layout hash of the model (validates it against the C kernels on the way)."""
    from ftte.train.table import LayerTable  # noqa: PLC0415 (train depends on model, not back)

    return int(LayerTable(model).layout_hash)


# ------------------------------------------------------------------------------------------
# Manifest
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParamGroup:
    """One parameter tensor: `rows` output channels of `row_length` floats (bias: length 1)."""

    key: str
    tensor: str  # "weights" or "bias"
    shape: tuple[int, ...]
    rows: int
    row_length: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


def param_groups(index: int, layer: Layer) -> list[ParamGroup]:
    groups = []
    for tensor, array in (("weights", layer.weights), ("bias", layer.bias)):
        if array is not None:
            groups.append(ParamGroup(f"layer{index}.{tensor}", tensor, tuple(array.shape), layer.channels,
                                     array.size // layer.channels))
    return groups


def manifest(model: Model, hash_value: int) -> dict:
    layers = []
    for index, layer in enumerate(model.layers):
        layers.append({
            "name": layer.name, "op": layer.op, "in": list(layer.in_shape), "out": list(layer.out_shape),
            "kernel": list(layer.kernel), "stride": list(layer.stride), "pad": list(layer.pad),
            "params": [{"key": g.key, "tensor": g.tensor, "shape": list(g.shape), "size": g.size,
                        "rows": g.rows, "row_length": g.row_length} for g in param_groups(index, layer)],
        })
    return {
        "format": FORMAT, "version": VERSION, "name": model.name, "input_shape": list(model.input_shape),
        "classes": model.classes, "parameters": model.parameter_count(),
        "parameter_bytes": 4 * model.parameter_count(), "layout_hash": f"0x{hash_value:08x}",
        "layers": layers, "source": model.metadata.get("source", {}),
    }


def _field(record: dict, key: str, kind: type, where: str):
    if not isinstance(record, dict) or key not in record:
        raise ModelFileError(f"{where}: missing {key!r}")
    if not isinstance(record[key], kind):
        raise ModelFileError(f"{where}: {key!r} must be a {kind.__name__}, got {record[key]!r}")
    return record[key]


def _triple(record: dict, key: str, where: str, length: int = 3) -> tuple[int, ...]:
    value = _field(record, key, list, where)
    if len(value) != length or not all(isinstance(v, int) for v in value):
        raise ModelFileError(f"{where}: {key!r} must be {length} integers, got {value!r}")
    return tuple(value)


def _parse_hash(text: str, where: str) -> int:
    try:
        return int(text, 16)
    except (TypeError, ValueError):
        raise ModelFileError(f"{where}: layout_hash {text!r} is not a hex number") from None


def _layer_from(record: dict, where: str) -> Layer:
    return Layer(_field(record, "op", str, where), _triple(record, "in", where),  # type: ignore[arg-type]
                 _triple(record, "out", where), _triple(record, "kernel", where, 2),  # type: ignore[arg-type]
                 _triple(record, "stride", where, 2), _triple(record, "pad", where, 2),  # type: ignore[arg-type]
                 name=_field(record, "name", str, where))


def _model_from(data: dict, arrays, origin: str) -> Model:
    """The Model a manifest describes, with its arrays; checks every key and shape."""
    if _field(data, "format", str, origin) != FORMAT:
        raise ModelFileError(f"{origin}: not an FTTE model manifest (format {data['format']!r})")
    if _field(data, "version", int, origin) > VERSION:
        raise ModelFileError(f"{origin}: version {data['version']} is newer than this ftte ({VERSION})")
    layers = []
    for index, record in enumerate(_field(data, "layers", list, origin)):
        where = f"{origin}: layer {index}"
        layer = _layer_from(record, where)
        for group in _field(record, "params", list, where):
            key, tensor = _field(group, "key", str, where), _field(group, "tensor", str, where)
            if key not in arrays or tensor not in ("weights", "bias"):
                raise ModelFileError(f"{where}: parameter {key!r} ({tensor}) missing from the weights")
            array = np.ascontiguousarray(arrays[key], np.float32)
            if list(array.shape) != _field(group, "shape", list, where):
                raise ModelFileError(f"{where}: {key} has shape {array.shape}, the manifest says {group['shape']}")
            setattr(layer, tensor, array)
        layers.append(layer)
    if not layers:
        raise ModelFileError(f"{origin}: no layers")
    metadata = {"source": data.get("source", {}), "layout_hash": _parse_hash(data["layout_hash"], origin)}
    input_shape = _triple(data, "input_shape", origin)
    return Model(input_shape, layers, _field(data, "name", str, origin), metadata)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# Save and load
# ------------------------------------------------------------------------------------------

def _compact_lists(text: str) -> str:
    """Lists of numbers on one line: [3, 3] rather than one number a line. (A real newline never
    occurs inside a JSON string, so names are left alone.)"""
    return re.sub(r"\[\n[\d,\s-]*\]", lambda m: json.dumps(json.loads(m.group())), text)


def _arrays(model: Model, hash_value: int) -> dict[str, np.ndarray]:
    arrays = {_HASH_KEY: np.array(hash_value, np.uint32)}
    for index, layer in enumerate(model.layers):
        for group in param_groups(index, layer):
            arrays[group.key] = np.asarray(getattr(layer, group.tensor), np.float32)
    return arrays


def save_model(model: Model, path: str | Path) -> dict:
    """Writes `path/manifest.json` + `path/weights.npz`, or one file when `path` ends in .npz.
    Returns the manifest."""
    path = Path(path)
    hash_value = layout_hash(model)
    data = manifest(model, hash_value)
    arrays = _arrays(model, hash_value)
    text = _compact_lists(json.dumps(data, indent=2)) + "\n"
    if path.suffix == ".npz":
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays, **{_MANIFEST_KEY: np.frombuffer(text.encode(), np.uint8)})
    else:
        path.mkdir(parents=True, exist_ok=True)
        (path / MANIFEST).write_text(text)
        np.savez(path / WEIGHTS, **arrays)
    return data


def _read(path: Path) -> tuple[dict, dict[str, np.ndarray], str]:
    """(manifest, arrays, what to call the manifest in errors)."""
    if path.is_dir():
        if not (path / MANIFEST).is_file() or not (path / WEIGHTS).is_file():
            raise FileNotFoundError(f"{path}: an FTTE model directory needs {MANIFEST} and {WEIGHTS} "
                                    "(make one with `ftte convert`)")
        text, arrays, origin = (path / MANIFEST).read_text(), _load_npz(path / WEIGHTS), str(path / MANIFEST)
    elif path.is_file() and path.suffix == ".npz":
        arrays, origin = _load_npz(path), f"{path} (manifest)"
        if _MANIFEST_KEY not in arrays:
            raise ModelFileError(f"{path}: no manifest inside (not an FTTE model file)")
        text = arrays.pop(_MANIFEST_KEY).tobytes().decode("utf-8", "replace")
    else:
        raise FileNotFoundError(f"no FTTE model at {path}: expected a directory with {MANIFEST} and "
                                f"{WEIGHTS}, or a .npz file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{origin} is not valid JSON: {error}") from None
    return data, arrays, origin


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except Exception as error:  # zipfile, pickle and format errors alike
        raise ModelFileError(f"{path} is not a readable .npz file: {error}") from None


def load_model(path: str | Path) -> Model:
    """Reads a model saved by save_model(). Refuses weights of another layout, and a manifest
    whose stated layout hash is not the one its layers give."""
    data, arrays, origin = _read(Path(path))
    stated = _parse_hash(_field(data, "layout_hash", str, origin), origin)
    weights_hash = arrays.get(_HASH_KEY)
    if weights_hash is None or int(weights_hash) != stated:
        found = "none" if weights_hash is None else f"0x{int(weights_hash):08x}"
        raise ModelFileError(f"layout hash mismatch: the weights are for layout {found}, the manifest "
                             f"({origin}) for 0x{stated:08x}")
    model = _model_from(data, arrays, origin)
    try:
        actual = layout_hash(model)
    except (RuntimeError, ValueError) as error:
        raise ModelFileError(f"{origin}: the layers are not a valid FTTE model: {error}") from None
    if actual != stated:
        raise ModelFileError(f"layout hash mismatch: {origin} states 0x{stated:08x} but its layers give "
                             f"0x{actual:08x} (edited or corrupt manifest)")
    return model


# ------------------------------------------------------------------------------------------
# C source for the firmware
# ------------------------------------------------------------------------------------------

def _float_literal(value: float) -> str:
    """A C float literal that reads back as exactly this float32 (9 significant digits)."""
    if not np.isfinite(value):
        raise ValueError(f"cannot write the non-finite weight {value} as C source")
    text = f"{value:.9g}"
    return (text if any(c in text for c in ".e") else text + ".0") + "f"


def _c_array(name: str, array: np.ndarray) -> str:
    values = [_float_literal(float(v)) for v in np.asarray(array, np.float32).ravel()]
    lines = [", ".join(values[i:i + 6]) for i in range(0, len(values), 6)]
    body = ",\n    ".join(lines)
    return f"static const float {name}[{len(values)}] = {{\n    {body}\n}};\n"


def _c_record(index: int, layer: Layer, symbol: str) -> str:
    def shape(s):
        return f"{{{s[0]}, {s[1]}, {s[2]}}}"

    weights = f"{symbol}_{index}_weights" if layer.weights is not None else "NULL"
    bias = f"{symbol}_{index}_bias" if layer.bias is not None else "NULL"
    name = layer.name.replace("*/", "* /")
    return (f"    {{/* {index}: {name} */ .op = FTTE_OP_{layer.op.upper()}, .in = {shape(layer.in_shape)}, "
            f".out = {shape(layer.out_shape)},\n"
            f"     .kernel_h = {layer.kernel[0]}, .kernel_w = {layer.kernel[1]}, .stride_h = {layer.stride[0]}, "
            f".stride_w = {layer.stride[1]}, .pad_top = {layer.pad[0]}, .pad_left = {layer.pad[1]},\n"
            f"     .weights = {weights}, .bias = {bias}}},\n")


def c_source(model: Model, hash_value: int, symbol: str = "ftte_model_data", origin: str = ""
             ) -> tuple[str, str]:
    """(header, source) of the model for the firmware; `symbol` prefixes every name."""
    guard = f"{symbol.upper()}_H"
    banner = f"/* Generated by ftte from {origin or model.name}: do not edit. */\n"
    h, w, c = model.input_shape
    header = (
        f"{banner}#ifndef {guard}\n#define {guard}\n\n#include \"ftte_train.h\"\n\n"
        f"/** ftte_model_layout_hash() of {symbol}: exchanged with the host to refuse another layout. */\n"
        f"#define FTTE_MODEL_LAYOUT_HASH 0x{hash_value:08x}u\n"
        f"#define FTTE_MODEL_NUM_LAYERS {len(model.layers)}\n"
        f"#define FTTE_MODEL_INPUT_H {h}\n#define FTTE_MODEL_INPUT_W {w}\n#define FTTE_MODEL_INPUT_C {c}\n"
        f"#define FTTE_MODEL_CLASSES {model.classes}\n#define FTTE_MODEL_PARAMETERS {model.parameter_count()}\n\n"
        f"extern const ftte_layer {symbol}_layers[FTTE_MODEL_NUM_LAYERS];\n"
        f"extern const ftte_model {symbol};\n\n#endif /* {guard} */\n")
    arrays = []
    for index, layer in enumerate(model.layers):
        for tensor in ("weights", "bias"):
            if getattr(layer, tensor) is not None:
                arrays.append(_c_array(f"{symbol}_{index}_{tensor}", getattr(layer, tensor)))
    records = "".join(_c_record(i, layer, symbol) for i, layer in enumerate(model.layers))
    source = (f"{banner}#include \"{symbol}.h\"\n\n" + "\n".join(arrays) +
              f"\nconst ftte_layer {symbol}_layers[FTTE_MODEL_NUM_LAYERS] = {{\n{records}}};\n\n"
              f"const ftte_model {symbol} = {{{symbol}_layers, FTTE_MODEL_NUM_LAYERS}};\n")
    return header, source


def write_c_source(model: Model, directory: str | Path, symbol: str = "ftte_model_data",
                   origin: str = "") -> tuple[Path, Path]:
    """Writes `<symbol>.h` and `<symbol>.c` into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    header, source = c_source(model, layout_hash(model), symbol, origin)
    paths = directory / f"{symbol}.h", directory / f"{symbol}.c"
    paths[0].write_text(header)
    paths[1].write_text(source)
    return paths
