"""Instructions per multiply-accumulate of the C training kernels on RV32IMC (no FPU), the
ESP32-C3's instruction set: the same harness, cases and checks as `ftte.bench.instructions`,
built with the Makefile's rv32imc flags (Debian's riscv64-unknown-elf-gcc, picolibc) and run in
unicorn's RV32 core. float32 arithmetic is libgcc's soft float (__mulsf3, __addsf3, ...): those
calls run inside the kernel call and are counted with it.

Like the M4F benchmark, it saves every case's counts for the simulator
(`host/ftte/sim/instructions_rv32imc.json`, read by the ESP32-C3 profile) unless --no-save.
Executed instructions, not cycles.

Run: ``python -m ftte.bench.instructions_rv32``.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import sys
import tempfile
from pathlib import Path

from ftte.bench import instructions as m4
from ftte.bench.instructions import BenchError, Case, Firmware, Run

TARGET = "rv32imc"


class Emulator(m4.Emulator):
    """The firmware in unicorn's RV32 core (integer only: every float op is a libgcc call)."""

    isa = "rv32imc"

    def __init__(self, firmware: Firmware):  # noqa: D107 - the M4 setup, with the RV32 core
        from unicorn import UC_ARCH_RISCV, UC_HOOK_CODE, UC_MODE_RISCV32, Uc

        self.fw = firmware
        self.uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV32)
        a = firmware.address
        self.flash = (a("__bench_flash_origin"), a("__bench_flash_length"))
        self.ram = (a("__bench_ram_origin"), a("__bench_ram_length"))
        for origin, length in (self.flash, self.ram):
            self.uc.mem_map(origin, length)
        for address, data in firmware.segments:
            self.uc.mem_write(address, data)
        self.stack_top = a("__bench_stack_top")
        self.entry = a("bench_run")
        self.halt = a("bench_halt")
        self._state = m4._Counting()
        self.uc.hook_add(UC_HOOK_CODE, self._hook, None, self.flash[0], self.flash[0] + self.flash[1] - 1)
        self.cases = self._read_cases()

    def _read_cases(self) -> list[Case]:
        """As on the M4; the linked RV32 image keeps the two small counters in .srodata without
        their symbols, so the row count comes from the size of bench_cases instead."""
        from ftte.native import op_names
        count, rest = divmod(self.fw.symbols["bench_cases"].size, 4 * m4.FIELDS)
        if rest:
            raise BenchError("bench_cases is not a whole number of rows: tools/mcu_bench/bench_entry.c "
                             "and ftte.bench.instructions disagree")
        rows = self.read_i32("bench_cases", count * m4.FIELDS).reshape(count, m4.FIELDS)
        names = op_names()
        return [Case(index=i, kernel=names[int(r[2])], direction=m4.DIRECTIONS[int(r[0])], batch=int(r[1]),
                     geometry=tuple(int(v) for v in r[2:])) for i, r in enumerate(rows)]

    def _return_address(self, uc) -> int:
        from unicorn.riscv_const import UC_RISCV_REG_RA
        return uc.reg_read(UC_RISCV_REG_RA)

    def _call(self) -> tuple[tuple[int, int, int, int], int, int]:
        from unicorn.riscv_const import UC_RISCV_REG_A0, UC_RISCV_REG_PC, UC_RISCV_REG_RA, UC_RISCV_REG_SP
        return (UC_RISCV_REG_SP, UC_RISCV_REG_RA, UC_RISCV_REG_A0, UC_RISCV_REG_PC), self.entry, self.halt


def save_for_simulator(runs: list[Run], fw: Firmware, path: Path | None = None,
                       ops: list[m4.OpRun] | None = None) -> Path:
    from ftte.sim import measured
    header = {"command": "python -m ftte.bench.instructions_rv32", "target": "RV32IMC (soft float)",
              "compiler": fw.compiler, "flags": " ".join(fw.flags.cflags + fw.flags.arch),
              "sources": m4.source_state().removeprefix("sources: "), "date": datetime.date.today().isoformat(),
              "counts": "executed instructions (unicorn RV32) from the kernel's entry to its return, libgcc's "
                        "soft-float calls included; MACs are ftte_layer_macs x batch",
              "ops": "bench_op_cases (tools/mcu_bench/bench_entry.c), as on the M4F"}
    return measured.save(measured.rows_of(runs), header, path or measured.DATA_RV32,
                         measured.op_rows_of(ops) if ops else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ftte.bench.instructions_rv32",
                                     description="Instructions per MAC of the C kernels on RV32IMC (unicorn).")
    parser.add_argument("--kernel", action="append", help="only cases of this kernel (repeatable)")
    parser.add_argument("--no-save", action="store_true", help="do not refresh the simulator's RV32 cost data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    build_dir = Path(tempfile.mkdtemp(prefix="ftte-rv32-bench-"))
    try:
        fw = m4.build(build_dir, TARGET)
        emulator = Emulator(fw)
        cases = [c for c in emulator.cases if not args.kernel or c.kernel in args.kernel]
        runs = m4.measure(emulator, cases, args.seed)
        print(f"RV32IMC (no FPU: libgcc soft float), {fw.compiler}\nflags: "
              f"{' '.join(fw.flags.cflags + fw.flags.arch)} (kernels/Makefile, {TARGET})\n{m4.source_state()}\n"
              "Executed instructions (unicorn), not cycles; every result checked against the host build.\n")
        print(m4.table(runs))
        if not args.kernel:
            ops = m4.measure_ops(emulator, args.seed)
            print("\nThe rest of a training step (bench_op_cases):\n")
            print(m4.ops_table(ops))
            if not args.no_save:
                print(f"\nwrote {save_for_simulator(runs, fw, ops=ops)} (the simulator's ESP32-C3 cost model)")
    except BenchError as error:
        print(f"ftte.bench.instructions_rv32: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, m4.MissingTools) else 1
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
