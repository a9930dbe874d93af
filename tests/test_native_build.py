"""The cffi extension ftte._native: it imports, its constants and struct layouts are the C
compiler's (not hand copies), and a kernel runs end to end."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ftte._native import ffi, lib

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "kernels" / "include"
HEADERS = ("ftte_types.h", "ftte_kernels.h", "ftte_train.h")


def _header_code():
    """The public headers' text without comments (comments quote values and shapes)."""
    text = "\n".join((INCLUDE / name).read_text(encoding="utf-8") for name in HEADERS)
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)


_INT = r"-?\s*(?:0[xX][0-9a-fA-F]+|\d+)"
# Enumerators written with an explicit value: `FTTE_OP_DENSE = 1,`
ENUMERATORS = {name: int(value.replace(" ", ""), 0) for name, value in
               re.findall(rf"\b(FTTE_\w+)\s*=\s*({_INT})\s*[,}}]", _header_code())}
# Integer macros: `#define FTTE_MAX_LAYERS 48`
MACROS = {name: int(value, 0) for name, value in
          re.findall(rf"^\s*#\s*define\s+(FTTE_\w+)[ \t]+({_INT})[ \t]*$", _header_code(), re.M)}
FUNCTIONS = re.findall(r"^[ \t]*(?:const\s+)?\w+[\s*]+(ftte_\w+)\s*\(", _header_code(), re.M)


def test_the_header_parse_found_the_families():
    # Guards against the regexes above silently matching nothing.
    assert "FTTE_OK" in ENUMERATORS and "FTTE_OP_DENSE" in ENUMERATORS
    assert any(n.startswith("FTTE_ERR_") for n in ENUMERATORS)
    assert "ftte_layer_validate" in FUNCTIONS and "ftte_train_step" in FUNCTIONS


@pytest.mark.parametrize("name", sorted(ENUMERATORS))
def test_enum_constant_equals_the_header(name):
    assert getattr(lib, name) == ENUMERATORS[name]


@pytest.mark.parametrize("enum, prefix", [("ftte_status", ("FTTE_OK", "FTTE_ERR_")),
                                          ("ftte_op", ("FTTE_OP_",)),
                                          ("ftte_update_mode", ("FTTE_UPDATE_",))])
def test_enum_types_hold_exactly_the_header_enumerators(enum, prefix):
    from_header = {n: v for n, v in ENUMERATORS.items() if n.startswith(prefix)}
    assert ffi.typeof(enum).relements == from_header


@pytest.mark.parametrize("name", sorted(MACROS))
def test_integer_macro_equals_the_header(name):
    assert getattr(lib, name) == MACROS[name]


def test_plan_arrays_are_sized_by_the_header_macro():
    fields = dict(ffi.typeof("ftte_plan").fields)
    assert fields["param_offset"].type.length == lib.FTTE_MAX_LAYERS


def test_every_header_function_is_bound():
    missing = [f for f in FUNCTIONS if not hasattr(lib, f)]
    assert not missing


def test_cdef_has_no_hand_copied_values():
    from ftte._build_native import cdef_from_headers

    cdef = cdef_from_headers()
    assert not re.search(r"=\s*-?\s*\d", cdef), "an enumerator value was copied, not left to cc"
    assert not re.search(r"#\s*define\s+\w+\s+[^.\s]", cdef), "a macro value was copied"
    assert "FTTE_OP_DENSE = ..." in cdef


def test_layer_offsets_are_consistent():
    int32, shape = ffi.sizeof("int32_t"), ffi.sizeof("ftte_shape")
    assert shape == 3 * int32
    assert ffi.offsetof("ftte_layer", "op") == 0
    assert ffi.offsetof("ftte_layer", "in") == int32
    assert ffi.offsetof("ftte_layer", "out") == int32 + shape
    assert ffi.offsetof("ftte_layer", "kernel_h") == int32 + 2 * shape
    assert ffi.offsetof("ftte_layer", "weights") % ffi.alignof("void *") == 0
    assert ffi.offsetof("ftte_layer", "bias") == ffi.offsetof("ftte_layer", "weights") + ffi.sizeof(
        "void *")
    assert ffi.sizeof("ftte_layer") == ffi.offsetof("ftte_layer", "bias") + ffi.sizeof("void *")


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler to probe layouts with")
def test_every_struct_layout_matches_a_separately_compiled_probe(tmp_path):
    structs = [t for t in ffi.list_types()[0] if ffi.typeof(t).kind == "struct"]
    assert "ftte_layer" in structs and "ftte_plan" in structs
    lines, expected = [], []
    for t in structs:
        lines.append(f'printf("%zu %zu\\n", sizeof({t}), offsetof(struct {{ char c; {t} x; }}, x));')
        expected.append(f"{ffi.sizeof(t)} {ffi.alignof(t)}")
        for field, _ in ffi.typeof(t).fields:
            lines.append(f'printf("%zu\\n", offsetof({t}, {field}));')
            expected.append(str(ffi.offsetof(t, field)))
    src = tmp_path / "probe.c"
    src.write_text('#include <stdio.h>\n#include <stddef.h>\n#include "ftte_types.h"\n'
                   '#include "ftte_kernels.h"\n#include "ftte_train.h"\n#include "ftte_wire.h"\n'
                   "int main(void) {\n" + "\n".join(lines) + "\nreturn 0;\n}\n")
    exe = tmp_path / "probe"
    wire = INCLUDE.parents[1] / "firmware" / "protocol" / "include"
    subprocess.run(["cc", "-std=c99", f"-I{INCLUDE}", f"-I{wire}", str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    assert out.split("\n")[:-1] == expected


def _dense_layer(in_features=4, out_features=3):
    return ffi.new("ftte_layer *", {"op": lib.FTTE_OP_DENSE,
                                    "in": {"h": 1, "w": 1, "c": in_features},
                                    "out": {"h": 1, "w": 1, "c": out_features}})


def test_layer_validate_accepts_a_dense_layer():
    layer = _dense_layer()
    assert lib.ftte_layer_validate(layer) == lib.FTTE_OK
    assert lib.ftte_layer_row_length(layer) == 4
    assert lib.ftte_layer_macs(layer) == 12


def test_layer_validate_refuses_broken_layers():
    layer = _dense_layer()
    getattr(layer, "in").h = 2  # a dense input must be {1, 1, features}
    assert lib.ftte_layer_validate(layer) == lib.FTTE_ERR_SHAPE
    layer = _dense_layer(out_features=0)
    assert lib.ftte_layer_validate(layer) == lib.FTTE_ERR_SHAPE
    assert lib.ftte_layer_validate(ffi.NULL) == lib.FTTE_ERR_ARG
