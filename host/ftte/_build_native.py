"""cffi builder (API mode) of ``ftte._native``: the C kernels, as the Python package sees them.

C is the single source of truth: the cdef is derived from the public headers at build time,
never written by hand. From each header we drop comments, preprocessor lines (the
``#ifdef __cplusplus`` blocks with their ``extern "C" {`` and ``}`` go whole) and ``static inline``
definitions, and we leave every value for the C compiler to supply (cffi's "let the C compiler
fill the gaps" syntax):

- enumerators: ``NAME = <expr>`` becomes ``NAME = ...`` (a partial enum);
- integer macros: ``#define NAME <value>`` becomes ``#define NAME ...``;
- array lengths written with a macro, ``a[FTTE_MAX_LAYERS]``, become ``a[...]``.

Struct fields are kept as written; API mode checks every struct layout against the compiler.

Run by pip through ``cffi_modules`` in setup.py, or directly:
``python host/ftte/_build_native.py`` builds host/ftte/_native*.so in place.
"""

import os
import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parents[2]  # host/ftte/_build_native.py -> repo root
INCLUDE = ROOT / "kernels" / "include"
SRC = ROOT / "kernels" / "src"
WIRE = ROOT / "firmware" / "protocol"  # the wire codec (its header includes ftte_train.h)
# Names are relative to kernels/include; the wire header is given by its absolute path.
HEADERS = ("ftte_types.h", "ftte_kernels.h", "ftte_train.h", str(WIRE / "include" / "ftte_wire.h"))

# -ffp-contract=off: no fused multiply-add contraction. The kernels are compared with
# TensorFlow at 1e-5, so every product and sum must be a plain IEEE single-precision op
# (clang contracts by default, and GCC does in its GNU modes or with -march that has FMA).
# -march=native: the extension is built from source on the machine that runs it, and wider
# vectors speed the host-side simulator; without contraction the results do not change.
# FTTE_PORTABLE_BUILD=1 drops it (for a wheel meant for other machines).
EXTRA_COMPILE_ARGS = ["-std=c99", "-O3", "-ffp-contract=off"]
if os.environ.get("FTTE_PORTABLE_BUILD") != "1":
    EXTRA_COMPILE_ARGS.append("-march=native")


def _strip_comments(text):
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)


def _strip_preprocessor(text):
    """Drop directives, except integer constants: `#define N 48` -> `#define N ...`."""
    # The `#ifdef __cplusplus` blocks hold `extern "C" {` and its closing `}`: drop them whole.
    text = re.sub(r"^[ \t]*#[ \t]*ifdef[ \t]+__cplusplus\b.*?^[ \t]*#[ \t]*endif\b[^\n]*", "",
                  text, flags=re.S | re.M)

    def directive(m):
        d = re.fullmatch(r"\s*#\s*define\s+([A-Za-z_]\w*)[ \t]+(.*\S)\s*", m.group(0), re.S)
        # Object-like macros with a value that is not a float or string literal: cffi asks the
        # compiler for the value (include guards have no value; function-like macros have no space).
        if d and not re.search(r"[.\"']|\d[eE][-+]?\d", d.group(2)):
            return f"#define {d.group(1)} ..."
        return ""

    # Every directive line, with its backslash continuations.
    return re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", directive, text, flags=re.M)


def _strip_static_inline(text):
    """Remove `static inline` definitions (and declarations): they are not symbols to bind."""
    while (m := re.search(r"\bstatic\s+inline\b", text)) is not None:
        brace, semi = text.find("{", m.end()), text.find(";", m.end())
        if brace < 0 or 0 <= semi < brace:  # a declaration only
            end = semi + 1
        else:  # skip the body, braces matched
            depth, end = 0, brace
            while True:
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                end += 1
                if depth == 0:
                    break
        text = text[:m.start()] + text[end:]
    return text


def _enum_values_from_compiler(text):
    """`enum { A = 1, B = -2 }` -> `enum { A = ..., B = ... }`: values come from the compiler."""

    def body(m):
        items = re.split(r",(?![^()]*\))", m.group(2))  # top-level commas only
        items = [re.sub(r"=.*", "= ...", item, flags=re.S) for item in items]
        return m.group(1) + ",".join(items) + "}"

    return re.sub(r"(\benum\b[^{};]*\{)([^}]*)\}", body, text)


def cdef_from_headers(names=HEADERS):
    """The cdef text: the public headers, reduced to what cffi's parser accepts."""
    parts = []
    for name in names:
        text = (INCLUDE / name).read_text(encoding="utf-8")
        text = _strip_comments(text)
        text = _strip_preprocessor(text)
        text = _strip_static_inline(text)
        text = _enum_values_from_compiler(text)
        # Array lengths given by a macro or expression (`int32_t a[FTTE_MAX_LAYERS]`) -> `[...]`:
        # cffi's parser needs a literal, the compiler completes the length.
        text = re.sub(r"\[\s*[^\]\d\s][^\]]*\]", "[...]", text)
        text = re.sub(r"[ \t]+\n", "\n", text)  # what stripped comments left behind
        parts.append(f"/* {name} */\n" + re.sub(r"\n\s*\n+", "\n", text).strip() + "\n")
    return "\n".join(parts)


def kernel_sources():
    """Every .c file under kernels/src, recursively, sorted. setuptools (pip) refuses absolute
    paths: relative to setup.py's directory, its cwd. A direct run compiles from cffi's tmpdir."""
    paths = sorted(SRC.rglob("*.c")) + sorted((WIRE / "src").glob("*.c"))
    if __name__ != "__main__" and Path.cwd().resolve() == ROOT:
        return [p.relative_to(ROOT).as_posix() for p in paths]
    return [str(p) for p in paths]


ffibuilder = FFI()
ffibuilder.cdef(cdef_from_headers())
ffibuilder.set_source(
    "ftte._native",
    "\n".join(f'#include "{Path(name).name}"' for name in HEADERS),
    sources=kernel_sources(),
    include_dirs=[str(INCLUDE), str(SRC / "ops"), str(WIRE / "include")],
    extra_compile_args=EXTRA_COMPILE_ARGS,
)

if __name__ == "__main__":
    # Direct run: build under build/cffi, then install the module where pip's editable build
    # puts it. cffi's generated C already uses the limited API, so it takes pip's abi3 name and
    # neither build can shadow the other.
    import shutil
    from importlib.machinery import EXTENSION_SUFFIXES

    so = Path(ffibuilder.compile(tmpdir=str(ROOT / "build" / "cffi")))
    for stale in (ROOT / "host" / "ftte").glob("_native.*.so"):
        stale.unlink()
    name = "_native.abi3.so" if ".abi3.so" in EXTENSION_SUFFIXES else so.name  # debug CPython
    shutil.copy(so, ROOT / "host" / "ftte" / name)
