"""Instructions per multiply-accumulate of the C training kernels on a Cortex-M4F.

Builds the kernels with Debian's ``arm-none-eabi-gcc`` (the flags of ``kernels/Makefile``'s
cortex-m4 target, read from the Makefile itself) together with the freestanding harness in
``tools/mcu_bench/`` into an ELF in a temporary directory (never the source tree), runs each
case of the harness's table once in the unicorn emulator (Cortex-M4 with FPU, Thumb, M-class),
counts the instructions executed from the kernel's entry to its return, and divides by the
case's multiply-accumulates (``ftte_layer_macs`` of the host library, times the batch; the
two backward directions have the forward's MAC count).

Every case is checked before its count is reported: the emulator's result buffer must equal
the host build of the same kernel on the same inputs (and the dense forward must also equal
numpy), so a broken run cannot be measured silently.

The counts are executed instructions, not cycles: cycles (load-use stalls, flash wait states,
the FPU's pipelining, VLDR/VSTR pairing) need a real board. unicorn's code hook does not fire
for an IT-block instruction whose condition fails, so those (which still occupy an issue slot on
the M4) are not counted; the multiply-accumulate loops contain none.

Run: ``python -m ftte.bench.instructions [--profile]``.
"""

from __future__ import annotations

import argparse
import bisect
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]  # host/ftte/bench/instructions.py -> repo root
KERNELS = ROOT / "kernels"
HARNESS = ROOT / "tools" / "mcu_bench"
TARGET = "cortex-m4"  # the kernels/Makefile cross target

DIRECTIONS = ("forward", "backward_input", "backward_weight")  # bench_entry.c's BENCH_* order
FIELDS = 15  # one row of bench_cases: direction, n, then the 13 geometry integers
MAX_INSTRUCTIONS = 200_000_000  # per case; a kernel that runs longer is stuck
REQUIRED_PROGRAMS = ("gcc", "ar", "nm", "objdump")

# The harness's buffers, by role (tools/mcu_bench/bench_entry.c).
BUFFERS = {"x": "bench_x", "gx": "bench_gx", "y": "bench_y", "gy": "bench_gy",
           "w": "bench_w", "gw": "bench_gw", "bias": "bench_bias"}
# The buffer each direction writes.
RESULT = {"forward": "y", "backward_input": "gx", "backward_weight": "gw"}


class BenchError(RuntimeError):
    """The benchmark cannot run (build failure) or a run is wrong."""


class MissingTools(BenchError):
    """The cross compiler, make or unicorn is not installed."""


# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------

def require_tools(prefix: str = "arm-none-eabi-") -> None:
    """Raises BenchError naming what is missing and how to install it."""
    problems = []
    missing = [prefix + p for p in REQUIRED_PROGRAMS if shutil.which(prefix + p) is None]
    if missing:
        problems.append(f"{', '.join(missing)} not found on PATH: install Debian's cross "
                        "compiler (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)")
    if shutil.which("make") is None:
        problems.append("make not found on PATH (apt-get install make): the compiler flags are "
                        "read from kernels/Makefile")
    try:
        import unicorn
        if int(unicorn.__version__.split(".")[0]) < 2:
            problems.append(f"unicorn {unicorn.__version__} is too old: pip install 'unicorn>=2'")
    except ImportError:
        problems.append("the Python package unicorn is not installed: pip install 'unicorn>=2' "
                        "(or pip install -e '.[dev]')")
    if not (KERNELS / "Makefile").is_file() or not (HARNESS / "bench_entry.c").is_file():
        problems.append(f"kernel sources not found under {ROOT} (the benchmark runs from a "
                        "source checkout, e.g. pip install -e .)")
    if problems:
        raise MissingTools("cannot run the Cortex-M4F instruction benchmark:\n  - "
                         + "\n  - ".join(problems))


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
                         f"{proc.stdout}{proc.stderr}")
    return proc.stdout


@dataclass(frozen=True)
class CrossFlags:
    """What kernels/Makefile uses for a cross target (paths relative to kernels/)."""

    prefix: str
    cflags: list[str]
    arch: list[str]
    includes: list[str]
    sources: list[str]

    @property
    def gcc(self) -> str:
        return self.prefix + "gcc"

    def tool(self, name: str) -> str:
        return self.prefix + name


def makefile_flags(target: str = TARGET) -> CrossFlags:
    """Reads CROSS_CFLAGS, <target>_ARCH, <target>_PREFIX, INCLUDES and SRCS from
    kernels/Makefile, so that the benchmark builds exactly what `make cross` builds."""
    variables = {"cflags": "CROSS_CFLAGS", "arch": f"{target}_ARCH", "prefix": f"{target}_PREFIX",
                 "includes": "INCLUDES", "sources": "SRCS"}
    recipe = "".join(f"$(info {key}=$({var}))" for key, var in variables.items())
    out = _run(["make", "-s", "--no-print-directory", "-C", str(KERNELS),
                "--eval", f"ftte-bench-print-vars: ; {recipe}", "ftte-bench-print-vars"])
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    if not values.get("cflags") or not values.get("arch") or not values.get("sources"):
        raise BenchError(f"could not read the {target} flags from kernels/Makefile:\n{out}")
    return CrossFlags(prefix=values.get("prefix", "").strip(), cflags=values["cflags"].split(),
                      arch=values["arch"].split(), includes=values["includes"].split(),
                      sources=values["sources"].split())


# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Symbol:
    address: int
    size: int
    kind: str  # nm's type letter


@dataclass
class Firmware:
    elf: Path
    flags: CrossFlags
    compiler: str  # `gcc --version` first line
    symbols: dict[str, Symbol]
    segments: list[tuple[int, bytes]]  # PT_LOAD: (address, file bytes)
    functions: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, name)
    _disassembly: dict[int, str] | None = None

    def address(self, name: str) -> int:
        if name not in self.symbols:
            raise BenchError(f"symbol {name} not in {self.elf}")
        return self.symbols[name].address

    def function_at(self, pc: int) -> str:
        i = bisect.bisect_right(self.functions, (pc, float("inf"), "")) - 1
        if i >= 0 and self.functions[i][0] <= pc < self.functions[i][1]:
            return self.functions[i][2]
        return "?"

    def disassembly(self) -> dict[int, str]:
        """Address -> instruction text, from objdump -d."""
        if self._disassembly is None:
            text = _run([self.flags.tool("objdump"), "-d", "--no-show-raw-insn", str(self.elf)])
            self._disassembly = {
                int(m.group(1), 16): " ".join(m.group(2).split("@")[0].split())
                for m in re.finditer(r"^\s*([0-9a-f]+):\s+(\S.*)$", text, re.M)}
        return self._disassembly


def build(build_dir: Path | str | None = None, target: str = TARGET) -> Firmware:
    """Compiles every kernel source with the Makefile's flags for `target` (cortex-m4, or
    rv32imc for ftte.bench.instructions_rv32) into an archive, and links the harness against
    it. build_dir defaults to a fresh temporary directory."""
    if target == TARGET:
        require_tools()
    flags = makefile_flags(target)
    require_tools(flags.prefix)
    out = Path(build_dir) if build_dir is not None else Path(tempfile.mkdtemp(prefix="ftte-mcu-bench-"))
    out = out.resolve()
    (out / "obj").mkdir(parents=True, exist_ok=True)
    includes = [f"-I{(KERNELS / inc[2:]).resolve()}" if inc.startswith("-I") else inc
                for inc in flags.includes]

    def compile_one(source: Path, obj: Path) -> Path:
        obj.parent.mkdir(parents=True, exist_ok=True)
        _run([flags.gcc, *flags.cflags, *flags.arch, *includes, "-c", str(source), "-o", str(obj)])
        return obj

    jobs = [(KERNELS / s, out / "obj" / Path(s).with_suffix(".o")) for s in flags.sources]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objects = list(pool.map(lambda job: compile_one(*job), jobs))
        harness = pool.submit(compile_one, HARNESS / "bench_entry.c", out / "bench_entry.o")
        harness = harness.result()
    library = out / "libftte_kernels.a"
    library.unlink(missing_ok=True)
    _run([flags.tool("ar"), "rcs", str(library), *map(str, objects)])
    elf = out / "bench.elf"
    # No startup files: the emulator enters bench_run directly. The C library (newlib) only
    # provides what the kernels call (memset for the zero-fill loops GCC turns into calls; expf
    # and logf for the loss of the whole-step case, ftte.bench.steps).
    _run([flags.gcc, *flags.arch, "-nostartfiles", "-T", str(HARNESS / "link.ld"),
          f"-Wl,-Map,{out / 'bench.map'}", str(harness), str(library), "-lm", "-o", str(elf)])
    compiler = _run([flags.gcc, "--version"]).splitlines()[0]
    fw = Firmware(elf=elf, flags=flags, compiler=compiler, symbols=_symbols(flags, elf),
                  segments=_load_segments(elf))
    fw.functions = sorted((s.address, s.address + s.size, name) for name, s in fw.symbols.items()
                          if s.kind in "tTwW" and s.size > 0)
    return fw


def _symbols(flags: CrossFlags, elf: Path) -> dict[str, Symbol]:
    symbols = {}
    for line in _run([flags.tool("nm"), "-S", "--defined-only", str(elf)]).splitlines():
        parts = line.split()
        if len(parts) == 4:
            address, size, kind, name = parts
        elif len(parts) == 3:
            (address, kind, name), size = parts, "0"
        else:
            continue
        address = int(address, 16)
        if kind in "tTwW":
            address &= ~1  # the Thumb bit
        symbols.setdefault(name, Symbol(address, int(size, 16), kind))
    return symbols


def _load_segments(elf: Path) -> list[tuple[int, bytes]]:
    """The PT_LOAD segments of a little-endian ELF32: (virtual address, file bytes); the
    emulator's fresh memory supplies the zeros of memsz beyond filesz (.bss)."""
    data = elf.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise BenchError(f"{elf} is not a little-endian 32-bit ELF")
    phoff, = struct.unpack_from("<I", data, 28)
    phentsize, phnum = struct.unpack_from("<HH", data, 42)
    segments = []
    for i in range(phnum):
        p_type, p_offset, p_vaddr, _p_paddr, p_filesz, _memsz, _flags, _align = \
            struct.unpack_from("<8I", data, phoff + i * phentsize)
        if p_type == 1 and p_filesz:  # PT_LOAD
            segments.append((p_vaddr, data[p_offset:p_offset + p_filesz]))
    return segments


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One row of bench_entry.c's bench_cases."""

    index: int
    kernel: str     # 'dense', 'conv2d', ... (the C operator name)
    direction: str  # 'forward', 'backward_input', 'backward_weight'
    batch: int
    geometry: tuple[int, ...]  # op, in.h, in.w, in.c, out.h, out.w, out.c, kh, kw, sh, sw, pt, pl

    @property
    def function(self) -> str:
        return f"ftte_{self.kernel}_{self.direction}"

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return self.geometry[1:4]

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return self.geometry[4:7]

    def layer(self):
        """A host ftte_layer * with this geometry (no weights attached)."""
        from ftte.native import ffi
        g = self.geometry
        return ffi.new("ftte_layer *", {
            "op": g[0], "in": dict(zip("hwc", g[1:4])), "out": dict(zip("hwc", g[4:7])),
            "kernel_h": g[7], "kernel_w": g[8], "stride_h": g[9], "stride_w": g[10],
            "pad_top": g[11], "pad_left": g[12]})

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the call: the forward's per sample times the batch (each
        backward direction does as many as the forward)."""
        from ftte.native import lib
        return int(lib.ftte_layer_macs(self.layer())) * self.batch

    @property
    def row_length(self) -> int:
        from ftte.native import lib
        return int(lib.ftte_layer_row_length(self.layer()))

    def sizes(self) -> dict[str, int]:
        """Floats of each buffer role."""
        n_in, n_out = self.batch * int(np.prod(self.in_shape)), self.batch * int(np.prod(self.out_shape))
        weights = self.out_shape[2] * self.row_length
        return {"x": n_in, "gx": n_in, "y": n_out, "gy": n_out, "w": weights, "gw": weights,
                "bias": self.out_shape[2]}

    def describe(self) -> str:
        (ih, iw, ic), (oh, ow, oc) = self.in_shape, self.out_shape
        if self.kernel == "dense":
            return f"{ic}->{oc}, batch {self.batch}"
        kh, kw, sh, sw, pt, pl = self.geometry[7:]
        shape = f"{ih}x{iw}x{ic} -> {oh}x{ow}x{oc}"
        if self.kernel == "conv1d":
            shape = f"{iw}x{ic} -> {ow}x{oc}"
            kernel = f"k{kw} s{sw} p{pl}"
        elif self.kernel == "pointwise_conv2d":
            kernel = "1x1"
        else:
            kernel = f"k{kh}x{kw} s{sh if sh == sw else f'{sh}x{sw}'} " \
                     f"p{pt if pt == pl else f'{pt},{pl}'}"
        return f"{shape}, {kernel}, batch {self.batch}"


# ---------------------------------------------------------------------------------------------
# Emulator
# ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    case: Case
    status: int
    pcs: Counter  # instruction address -> times executed inside the kernel call
    result: np.ndarray  # the direction's output buffer after the call

    @property
    def instructions(self) -> int:
        return sum(self.pcs.values())

    @property
    def per_mac(self) -> float:
        return self.instructions / self.case.macs


class _Counting:
    """Hook state: counts from the kernel's first instruction until it returns to its caller."""

    def __init__(self):
        self.entry = -1
        self.ret = -1
        self.active = False
        self.entered = 0
        self.pcs: dict[int, int] = {}


class Emulator:
    """The firmware loaded into a unicorn Cortex-M4 (Thumb, M-class, FPU)."""

    isa = "m4f"  # the simulator's cost file this core measures (ftte.sim.profiles.ISAS)

    def __init__(self, firmware: Firmware):
        from unicorn import UC_ARCH_ARM, UC_HOOK_CODE, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
        from unicorn.arm_const import UC_ARM_REG_C1_C0_2, UC_CPU_ARM_CORTEX_M4

        self.fw = firmware
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS, cpu=UC_CPU_ARM_CORTEX_M4)
        a = firmware.address
        self.flash = (a("__bench_flash_origin"), a("__bench_flash_length"))
        self.ram = (a("__bench_ram_origin"), a("__bench_ram_length"))
        for origin, length in (self.flash, self.ram):
            self.uc.mem_map(origin, length)
        for address, data in firmware.segments:
            self.uc.mem_write(address, data)
        # Full access to CP10/CP11 (the FPU), as startup code would set CPACR on a board.
        # unicorn's Cortex-M4 executes float instructions without it, and has no System Control
        # Space mapped at 0xE000ED88; every case's result check proves the FPU ran.
        self.uc.reg_write(UC_ARM_REG_C1_C0_2, self.uc.reg_read(UC_ARM_REG_C1_C0_2) | (0xF << 20))
        self.stack_top = a("__bench_stack_top")
        self.entry = a("bench_run")
        self.halt = a("bench_halt")
        self._state = _Counting()
        self.uc.hook_add(UC_HOOK_CODE, self._hook, None, self.flash[0],
                         self.flash[0] + self.flash[1] - 1)
        self.cases = self._read_cases()

    def _hook(self, uc, address, _size, _data):
        st = self._state
        if st.active:
            if address == st.ret:
                st.active = False
                return
            st.pcs[address] = st.pcs.get(address, 0) + 1
        elif address == st.entry:
            st.active = True
            st.entered += 1
            st.ret = self._return_address(uc)
            st.pcs[address] = st.pcs.get(address, 0) + 1

    def _return_address(self, uc) -> int:
        """Where the counted function returns to (Thumb: LR without its mode bit)."""
        from unicorn.arm_const import UC_ARM_REG_LR
        return uc.reg_read(UC_ARM_REG_LR) & ~1

    # Memory -------------------------------------------------------------------------------
    def read_i32(self, name: str, count: int = 1) -> np.ndarray:
        return np.frombuffer(bytes(self.uc.mem_read(self.fw.address(name), 4 * count)), "<i4")

    def read_floats(self, name: str, count: int) -> np.ndarray:
        self._check_capacity(name, count)
        data = bytes(self.uc.mem_read(self.fw.address(name), 4 * count))
        return np.frombuffer(data, "<f4").astype(np.float32)

    def write_floats(self, name: str, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype="<f4").ravel()
        self._check_capacity(name, values.size)
        self.uc.mem_write(self.fw.address(name), values.tobytes())

    def _check_capacity(self, name: str, count: int) -> None:
        size = self.fw.symbols[name].size
        if 4 * count > size:
            raise BenchError(f"{count} floats do not fit {name} ({size} bytes)")

    # Cases --------------------------------------------------------------------------------
    def _read_cases(self) -> list[Case]:
        from ftte.native import op_names
        count = int(self.read_i32("bench_case_count")[0])
        fields = int(self.read_i32("bench_case_fields")[0])
        if fields != FIELDS or self.fw.symbols["bench_cases"].size != 4 * FIELDS * count:
            raise BenchError(f"bench_cases has {fields} fields per row, expected {FIELDS}: "
                             "tools/mcu_bench/bench_entry.c and this module disagree")
        rows = self.read_i32("bench_cases", count * FIELDS).reshape(count, FIELDS)
        names = op_names()
        return [Case(index=i, kernel=names[int(r[2])], direction=DIRECTIONS[int(r[0])],
                     batch=int(r[1]), geometry=tuple(int(v) for v in r[2:]))
                for i, r in enumerate(rows)]

    def op_cases(self) -> list["OpCase"]:
        """The rows of bench_op_cases (their count from the symbol's size, as on RV32)."""
        from ftte.native import op_names
        count, rest = divmod(self.fw.symbols["bench_op_cases"].size, 4 * OP_FIELDS)
        if rest:
            raise BenchError("bench_op_cases is not a whole number of rows: tools/mcu_bench/bench_entry.c "
                             "and ftte.bench.instructions disagree")
        rows = self.read_i32("bench_op_cases", count * OP_FIELDS).reshape(count, OP_FIELDS)
        names = op_names()
        return [OpCase(index=i, kind=OP_KINDS[int(r[0])], batch=int(r[1]), count=int(r[2]),
                       geometry=tuple(int(v) for v in r[3:]), kernel=names[int(r[3])] if r[0] <= 2 else "")
                for i, r in enumerate(rows)]

    def find_case(self, kernel: str, direction: str, batch: int = 1) -> Case:
        for case in self.cases:
            if (case.kernel, case.direction, case.batch) == (kernel, direction, batch):
                return case
        raise BenchError(f"no case {kernel} {direction} batch {batch} in bench_cases")

    # Running ------------------------------------------------------------------------------
    def _call(self) -> tuple[tuple[int, int, int, int], int, int]:
        """How to call bench_run: the (stack pointer, return address, first argument and result,
        program counter) registers, where to start and what to return to (Thumb: bit 0 set)."""
        from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_PC, UC_ARM_REG_R0, UC_ARM_REG_SP
        return (UC_ARM_REG_SP, UC_ARM_REG_LR, UC_ARM_REG_R0, UC_ARM_REG_PC), self.entry | 1, self.halt | 1

    def call(self, entry: str, counted: str | None = None, argument: int = 0) -> tuple[int, Counter]:
        """Calls the harness function `entry` (bench_run, bench_step_run, ...) with one integer
        argument and returns its result and, if `counted` names a function, the per-address
        instruction counts of the one call of it that `entry` must make (else an empty Counter)."""
        from unicorn import UcError

        st = self._state = _Counting()
        st.entry = self.fw.address(counted) if counted else -1
        uc = self.uc
        (sp, link, arg, pc_reg), start, back = self._call()
        uc.reg_write(sp, self.stack_top)
        uc.reg_write(link, back)
        uc.reg_write(arg, argument)
        what = counted or entry
        try:
            # start & 1: the Thumb bit of bench_run's call, which every harness entry shares
            uc.emu_start(self.fw.address(entry) | (start & 1), self.halt, count=MAX_INSTRUCTIONS)
        except UcError as error:
            pc = uc.reg_read(pc_reg)
            raise BenchError(f"{what}: emulation failed at 0x{pc:08x} "
                             f"({self.fw.function_at(pc)}): {error}") from error
        pc = uc.reg_read(pc_reg)
        if pc != self.halt:
            raise BenchError(f"{what}: {entry} did not return within "
                             f"{MAX_INSTRUCTIONS} instructions (stopped at 0x{pc:08x})")
        if counted and (st.entered != 1 or st.active):
            raise BenchError(f"{counted}: entered {st.entered} times, "
                             f"{'still' if st.active else 'not'} active at the end")
        return int(np.int32(np.uint32(uc.reg_read(arg)))), Counter(st.pcs)

    def run(self, case: Case, inputs: dict[str, np.ndarray]) -> Run:
        """Writes every buffer of `inputs`, calls bench_run(case.index) once and returns the
        kernel's status, its per-address instruction counts and its result buffer."""
        for role, values in inputs.items():
            self.write_floats(BUFFERS[role], values)
        status, pcs = self.call("bench_run", case.function, case.index)
        role = RESULT[case.direction]
        result = self.read_floats(BUFFERS[role], case.sizes()[role])
        return Run(case=case, status=status, pcs=pcs, result=result)


# ---------------------------------------------------------------------------------------------
# Inputs and references
# ---------------------------------------------------------------------------------------------

def make_inputs(case: Case, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random float32 buffers of every role. The accumulated gradients (gx, gw) start random
    so that += is checked too; the forward output starts NaN so that a skipped store shows."""
    sizes = case.sizes()
    inputs = {role: rng.standard_normal(size).astype(np.float32) for role, size in sizes.items()}
    inputs["y"] = np.full(sizes["y"], np.nan, np.float32)
    return inputs


def host_reference(case: Case, inputs: dict[str, np.ndarray], count: int | None = None) -> np.ndarray:
    """The same kernel, built for the host (ftte._native), on copies of the same inputs (on the
    output channels {0, count}, default all)."""
    from ftte.native import check, ffi, float_buffer, lib

    bufs = {role: np.array(values, dtype=np.float32) for role, values in inputs.items()}
    layer = case.layer()
    fn = getattr(lib, case.function)
    count = case.out_shape[2] if count is None else count
    n, whole = case.batch, ffi.new("ftte_slice *", {"begin": 0, "count": count})[0]
    f = {role: float_buffer(values, role) for role, values in bufs.items()}
    args = {"forward": [f["x"], f["w"], f["bias"], f["y"]],
            "backward_input": [f["gy"], f["w"], f["gx"]],
            "backward_weight": [f["x"], f["gy"], f["gw"]]}[case.direction]
    if len(ffi.typeof(fn).args) == 3 + len(args) + 1:  # conv kernels take scratch
        size_fn = getattr(lib, case.function + "_get_buffer_size")
        scratch = np.zeros(max(1, size_fn(layer, n) // 4), np.float32)
        args.append(float_buffer(scratch, "scratch"))
    check(fn(layer, n, whole, *args), f"host {case.function}")
    return bufs[RESULT[case.direction]]


def numpy_dense_forward(case: Case, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """output[n][o] = bias[o] + sum_i x[n][i] w[o][i], in float64."""
    in_c, out_c = case.in_shape[2], case.out_shape[2]
    x = inputs["x"].astype(np.float64).reshape(case.batch, in_c)
    w = inputs["w"].astype(np.float64).reshape(out_c, in_c)
    return (x @ w.T + inputs["bias"].astype(np.float64)).ravel()


def verify(run: Run, inputs: dict[str, np.ndarray], rtol: float = 1e-4, atol: float = 1e-4) -> None:
    """Raises BenchError unless the run succeeded and its result equals the host kernel's
    (and, for dense forward, numpy's)."""
    case = run.case
    if run.status != 0:
        raise BenchError(f"{case.function} ({case.describe()}) returned status {run.status}")
    if run.instructions == 0:
        raise BenchError(f"{case.function}: no instructions counted")
    references = [("host kernel", host_reference(case, inputs))]
    if case.kernel == "dense" and case.direction == "forward":
        references.append(("numpy", numpy_dense_forward(case, inputs)))
    for name, want in references:
        if not np.allclose(run.result, want, rtol=rtol, atol=atol):
            bad = ~np.isclose(run.result, want, rtol=rtol, atol=atol)
            i = int(np.argmax(bad))
            raise BenchError(f"{case.function} ({case.describe()}): emulator result differs from "
                             f"the {name} at {int(bad.sum())} of {bad.size} elements "
                             f"(first: [{i}] {run.result[i]!r} vs {want[i]!r})")


# ---------------------------------------------------------------------------------------------
# The rest of a training step: bench_op_cases
# ---------------------------------------------------------------------------------------------

OP_FIELDS = 16  # bench_entry.c's OP_FIELDS: kind, batch, count, then the 13 geometry integers
# bench_entry.c's OP_* kinds, in order. The first three are the MAC kernels on a channel slice.
OP_KINDS = ("forward", "backward_input", "backward_weight", "sgd", "sgd_momentum", "relu", "relu6",
            "relu_mask", "relu6_mask", "masked_backward", "relu_backward", "pool_forward",
            "pool_backward", "bias_backward", "cross_entropy", "zero")
OP_FUNCTIONS = {"sgd": "ftte_sgd_update", "sgd_momentum": "ftte_sgd_update", "relu": "ftte_relu_forward",
                "relu6": "ftte_relu6_forward", "relu_mask": "ftte_relu_mask", "relu6_mask": "ftte_relu6_mask",
                "masked_backward": "ftte_activation_backward_masked", "relu_backward": "ftte_relu_backward",
                "pool_forward": "ftte_max_pool2d_forward_indexed",
                "pool_backward": "ftte_max_pool2d_backward_indexed", "bias_backward": "ftte_bias_backward",
                "cross_entropy": "ftte_cross_entropy_backward", "zero": "memset"}


@dataclass(frozen=True)
class OpCase:
    """One row of bench_entry.c's bench_op_cases."""

    index: int
    kind: str       # OP_KINDS
    batch: int
    count: int      # slice channels (MAC kernels), elements, rows (bias), classes (loss)
    geometry: tuple[int, ...]
    kernel: str = ""  # the MAC kernel's operator ('' for the other kinds)

    @property
    def as_case(self) -> Case:
        """The MAC kernel case of this row's geometry (whole layer)."""
        return Case(index=-1, kernel=self.kernel, direction=self.kind, batch=self.batch, geometry=self.geometry)

    @property
    def function(self) -> str:
        return self.as_case.function if self.kernel else OP_FUNCTIONS[self.kind]

    @property
    def name(self) -> str:
        """The row's key in the simulator's data: 'conv1d backward_weight', 'sgd', ..."""
        return f"{self.kernel} {self.kind}" if self.kernel else self.kind

    @property
    def macs(self) -> int:
        """MACs of a MAC kernel row's slice (0 for the other kinds)."""
        if not self.kernel:
            return 0
        case = self.as_case
        return case.macs * self.count // case.out_shape[2]

    def describe(self) -> str:
        if self.kernel:
            return f"{self.as_case.describe()}, channels 0..{self.count - 1}"
        g = self.geometry
        if self.kind.startswith("pool"):
            return f"{g[1]}x{g[2]}x{g[3]} -> {g[4]}x{g[5]}x{g[6]}, window {g[7]}x{g[8]}"
        if self.kind == "bias_backward":
            return f"{self.count} rows x {g[6]} channels"
        if self.kind == "cross_entropy":
            return f"batch {self.batch}, {self.count} classes"
        return f"{self.count} floats"


@dataclass
class OpRun:
    case: OpCase
    status: int
    pcs: Counter

    @property
    def instructions(self) -> int:
        return sum(self.pcs.values())


def run_op(emulator: "Emulator", case: OpCase, rng: np.random.Generator) -> OpRun:
    """Writes random inputs, calls bench_op_run(case.index) once, checks the result where the
    host has the same kernel (MAC slices: the host build; SGD, ReLU, zeroing: numpy)."""
    size = emulator.fw.symbols["bench_x"].size // 4
    inputs = {role: rng.standard_normal(size).astype(np.float32) for role in ("x", "gx", "y", "gy")}
    inputs["w"] = rng.standard_normal(emulator.fw.symbols["bench_w"].size // 4).astype(np.float32)
    inputs["gw"] = rng.standard_normal(emulator.fw.symbols["bench_gw"].size // 4).astype(np.float32)
    inputs["bias"] = rng.standard_normal(emulator.fw.symbols["bench_bias"].size // 4).astype(np.float32)
    for role, values in inputs.items():
        emulator.write_floats(BUFFERS[role], values)
    window = max(case.geometry[7] * case.geometry[8], 1)
    aux = rng.integers(0, window if case.kind.startswith("pool") else 256, emulator.fw.symbols["bench_aux"].size)
    emulator.uc.mem_write(emulator.fw.address("bench_aux"), aux.astype(np.uint8).tobytes())
    labels = rng.integers(0, max(case.count, 1), 64).astype("<i4")
    emulator.uc.mem_write(emulator.fw.address("bench_labels"), labels.tobytes())
    status, pcs = emulator.call("bench_op_run", case.function, case.index)
    run = OpRun(case, status, pcs)
    if status != 0:
        raise BenchError(f"{case.function} ({case.describe()}) returned status {status}")
    if run.instructions == 0:
        raise BenchError(f"{case.function}: no instructions counted")
    n = case.count
    if case.kernel:
        mac = case.as_case
        sizes = mac.sizes()
        want = host_reference(mac, {r: inputs[r][:k] for r, k in sizes.items()}, case.count)
        role = RESULT[case.kind]
        got = emulator.read_floats(BUFFERS[role], sizes[role])
        if case.kind == "forward":  # the slice's channels only: the rest of y is not written
            oc = mac.out_shape[2]
            keep = (np.arange(sizes[role]) % oc) < case.count
            got, want = got[keep], want[keep]
        elif case.kind == "backward_weight":
            got, want = got[:n * mac.row_length], want[:n * mac.row_length]
        checks = [(got, want)]
    elif case.kind == "sgd":
        checks = [(emulator.read_floats("bench_w", n), inputs["w"][:n] - np.float32(0.01) * inputs["gw"][:n])]
    elif case.kind == "relu":
        checks = [(emulator.read_floats("bench_y", n), np.maximum(inputs["x"][:n], 0))]
    elif case.kind == "zero":
        checks = [(emulator.read_floats("bench_gw", n), np.zeros(n, np.float32))]
    else:
        checks = []
    for got, want in checks:
        if not np.allclose(got, want, rtol=1e-4, atol=1e-4):
            raise BenchError(f"{case.function} ({case.describe()}): emulator result differs from the host's")
    return run


def measure_ops(emulator: "Emulator", seed: int = 0) -> list[OpRun]:
    """Runs and checks every row of bench_op_cases."""
    rng = np.random.default_rng(seed)
    return [run_op(emulator, case, rng) for case in emulator.op_cases()]


def ops_table(runs: list[OpRun]) -> str:
    lines = ["| operation | geometry | MACs | instructions |", "|---|---|---:|---:|"]
    for r in runs:
        lines.append(f"| {r.case.name} | {r.case.describe()} | {r.case.macs:,} | {r.instructions:,} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HotLoop:
    function: str
    addresses: list[int]  # the hottest basic blocks' instructions
    iterations: int
    share: float          # of the call's instructions
    fmas: int             # vfma/vmla per iteration

    @property
    def per_mac(self) -> float:
        return len(self.addresses) / self.fmas if self.fmas else float("inf")


_FMA = re.compile(r"v(n?fm[as]|n?ml[as])\b")  # VFMA/VFMS/VMLA/VMLS (and negated forms)


def hot_loop(run: Run, fw: Firmware) -> HotLoop:
    """The innermost multiply-accumulate loop: the FMA instruction executed most often, with
    every instruction of its function executed exactly as often (the loop body). Without any
    FMA, the most executed instruction's group instead."""
    dis = fw.disassembly()
    fmas = {a: c for a, c in run.pcs.items() if _FMA.match(dis.get(a, ""))}
    pool = fmas or run.pcs
    top_address, top = max(pool.items(), key=lambda item: (item[1], -item[0]))
    function = fw.function_at(top_address)
    addresses = sorted(a for a, c in run.pcs.items() if c == top and fw.function_at(a) == function)
    n_fma = sum(1 for a in addresses if a in fmas)
    return HotLoop(function, addresses, top, top * len(addresses) / run.instructions, n_fma)


def blocks(run: Run, fw: Firmware, top: int = 6) -> list[tuple[str, int, int]]:
    """The biggest groups of instructions executed equally often within a function (loops and
    their bodies, roughly): (function, instructions in the group, times executed), by total."""
    groups: Counter = Counter()
    for address, count in run.pcs.items():
        groups[(fw.function_at(address), count)] += 1
    ranked = sorted(groups.items(), key=lambda item: -item[0][1] * item[1])
    return [(function, size, count) for (function, count), size in ranked[:top]]


def by_function(run: Run, fw: Firmware) -> list[tuple[str, int]]:
    totals: Counter = Counter()
    for address, count in run.pcs.items():
        totals[fw.function_at(address)] += count
    return totals.most_common()


def table(runs: list[Run]) -> str:
    lines = ["| kernel | direction | geometry | MACs | instructions | instructions/MAC |",
             "|---|---|---|---:|---:|---:|"]
    for r in runs:
        c = r.case
        lines.append(f"| {c.kernel} | {c.direction} | {c.describe()} | {c.macs:,} | "
                     f"{r.instructions:,} | {r.per_mac:.2f} |")
    return "\n".join(lines)


def profile(runs: list[Run], fw: Firmware, limit: float = 2.0) -> str:
    lines = ["| kernel | direction | MAC loop in | loop share | loop instr/iter | FMAs/iter | "
             "loop instr/MAC | rest instr/MAC | top functions (instructions) |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    listings = []
    for r in runs:
        loop = hot_loop(r, fw)
        top = ", ".join(f"{name} {count:,}" for name, count in by_function(r, fw)[:3])
        rest = (r.instructions - loop.iterations * len(loop.addresses)) / r.case.macs
        lines.append(f"| {r.case.kernel} | {r.case.direction} | {loop.function} | "
                     f"{loop.share:.0%} | {len(loop.addresses)} | {loop.fmas} | "
                     f"{loop.per_mac:.2f} | {rest:.2f} | {top} |")
        if r.per_mac > limit:
            dis = fw.disassembly()
            body = "\n".join(f"    {a:8x}: {dis.get(a, '?')}" for a in loop.addresses)
            where = "\n".join(f"    {size:4d} instructions x {count:6,} in {function}: "
                              f"{size * count / r.case.macs:.3f}/MAC"
                              for function, size, count in blocks(r, fw))
            listings.append(f"{r.case.function} ({r.case.describe()}): {r.per_mac:.2f} "
                            f"instructions/MAC; MAC loop ({loop.iterations:,} iterations, "
                            f"{loop.share:.0%} of the call) in {loop.function}:\n{body}\n"
                            f"  largest groups of equally executed instructions:\n{where}")
    out = "\n".join(lines)
    if listings:
        out += f"\n\nMAC loops of the cases above {limit} instructions/MAC:\n\n" \
               + "\n\n".join(listings)
    return out


def measure(emulator: Emulator, cases: list[Case] | None = None, seed: int = 0) -> list[Run]:
    """Runs and verifies each case (all of the harness's by default)."""
    rng = np.random.default_rng(seed)
    runs = []
    for case in cases if cases is not None else emulator.cases:
        inputs = make_inputs(case, rng)
        run = emulator.run(case, inputs)
        verify(run, inputs)
        runs.append(run)
    return runs


def source_state() -> str:
    """The commit the kernels were built from, and whether kernels/ has uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "kernels",
                                "tools/mcu_bench"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "sources: not a git checkout"
    return f"sources: git {head}" + (" + uncommitted changes under kernels/ or tools/mcu_bench/"
                                     if dirty else "")


def save_for_simulator(runs: list[Run], fw: Firmware, path: Path | None = None,
                       ops: list[OpRun] | None = None) -> Path:
    """Every case's exact counts into the file ftte.sim's cost model reads (ftte.sim.measured),
    the ops section too (measure_ops)."""
    import datetime

    from ftte.sim import measured
    header = {"command": "python -m ftte.bench.instructions", "target": "Cortex-M4F", "compiler": fw.compiler,
              "flags": " ".join(fw.flags.cflags + fw.flags.arch), "sources": source_state().removeprefix("sources: "),
              "date": datetime.date.today().isoformat(),
              "counts": "executed instructions (unicorn) from the kernel's entry to its return; MACs are "
                        "ftte_layer_macs x batch",
              "ops": "bench_op_cases (tools/mcu_bench/bench_entry.c): the MAC kernels on output-channel slices "
                     "and the rest of ftte_train_step (SGD, activations, masks, indexed max pool, bias gradient, "
                     "loss, zeroing), each at two or three sizes; executed instructions of the one call"}
    return measured.save(measured.rows_of(runs), header, path or measured.DATA,
                         measured.op_rows_of(ops) if ops else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ftte.bench.instructions",
        description="Instructions per MAC of the C kernels on a Cortex-M4F (unicorn emulator).")
    parser.add_argument("--build-dir", type=Path,
                        help="where to build the ELF (default: a temporary directory, removed)")
    parser.add_argument("--kernel", action="append",
                        help="only cases of this kernel (repeatable), e.g. dense, conv2d")
    parser.add_argument("--profile", action="store_true",
                        help="also show each case's multiply-accumulate loop and, above 2 "
                             "instructions/MAC, its disassembly")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-save", action="store_true",
                        help="do not refresh the simulator's cost data (ftte/sim/instructions_m4f.json), "
                             "which a run of every case otherwise rewrites")
    args = parser.parse_args(argv)
    try:
        require_tools()
        temporary = args.build_dir is None
        build_dir = Path(tempfile.mkdtemp(prefix="ftte-mcu-bench-")) if temporary else args.build_dir
        try:
            fw = build(build_dir)
            emulator = Emulator(fw)
            cases = [c for c in emulator.cases if not args.kernel or c.kernel in args.kernel]
            if not cases:
                raise BenchError(f"no case of kernel(s) {', '.join(args.kernel)}; have: "
                                 f"{', '.join(sorted({c.kernel for c in emulator.cases}))}")
            runs = measure(emulator, cases, args.seed)
            print(f"Cortex-M4F, {fw.compiler}\nflags: "
                  f"{' '.join(fw.flags.cflags + fw.flags.arch)} (kernels/Makefile, {TARGET})\n"
                  f"{source_state()}\n"
                  "Executed instructions (unicorn), not cycles; every result checked against "
                  "the host build of the same kernel.\n")
            print(table(runs))
            print("\nMACs are ftte_layer_macs x batch, padded taps included (the depthwise "
                  "kernels skip taps over the padding, so their ratio is per nominal MAC).")
            if args.profile:
                print()
                print(profile(runs, fw))
            if not args.kernel:
                ops = measure_ops(emulator, args.seed)
                print("\nThe rest of a training step (bench_op_cases; MAC kernels on channel slices):\n")
                print(ops_table(ops))
                if not args.no_save:
                    print(f"\nwrote {save_for_simulator(runs, fw, ops=ops)} (the simulator's cost model)")
        finally:
            if temporary:
                shutil.rmtree(build_dir, ignore_errors=True)
    except BenchError as error:
        print(f"ftte.bench.instructions: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, MissingTools) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
