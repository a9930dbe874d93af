"""The native board: the firmware (firmware/core, ports/native, the wire codec and the kernels)
built with the host's C compiler and run as a process that serves a pseudo-terminal.

    binary = build_native_board(model)                      # cached by sources, flags and layout
    proc = await NativeBoardProcess.start(binary, ram=32768)
    board = await SerialBoard.connect(proc.path, model)     # the real serial path, over the pty
    ...
    await proc.stop()

The build uses the cffi extension's float-affecting flags (ftte._build_native.EXTRA_COMPILE_ARGS:
-O3 -ffp-contract=off, -march=native unless FTTE_PORTABLE_BUILD=1), so the board and
ftte.train.Trainer compute bit-identical updates on this machine. `pio run -e native_board` builds
the same program (.pio/build/native_board/program) with the same flags; set FTTE_NATIVE_BOARD to a
binary to use that (or any other) build instead.

EmulatedBoard is a coordinator Board that starts such a process when it joins, pushes its data
shard to it (DATA) and then talks to it through SerialBoard, as PortBoard does with a real board's
port: `ftte run --emulated N`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ftte.coordinator.board import BoardError
from ftte.link.port import PortBoard
from ftte.link.protocol import LinkTimings
from ftte.model import Model

ROOT = Path(__file__).resolve().parents[3]  # host/ftte/link/native.py -> the repository
FIRMWARE = ROOT / "firmware"
KERNELS = ROOT / "kernels"
COMMITTED_MODEL = FIRMWARE / "core" / "model"  # the digits MLP's ftte_model_data.{h,c}
BUILD_ROOT = ROOT / "build" / "native_board"
WARNINGS = ["-Wall", "-Wextra", "-Wdouble-promotion", "-Wshadow"]

_build_lock = threading.Lock()


class NativeBoardError(BoardError):
    """The native board could not be built or started."""


def _float_flags() -> list[str]:
    """The extension's compile flags (C standard, optimisation, contraction, -march)."""
    from ftte._build_native import EXTRA_COMPILE_ARGS  # noqa: PLC0415 (only when building)

    return list(EXTRA_COMPILE_ARGS)


def _sources() -> list[Path]:
    return (sorted((KERNELS / "src").rglob("*.c")) + sorted((FIRMWARE / "protocol" / "src").glob("*.c"))
            + sorted((FIRMWARE / "core" / "src").glob("*.c")) + sorted((FIRMWARE / "ports" / "native").glob("*.c")))


def _headers() -> list[Path]:
    dirs = [KERNELS / "include", KERNELS / "src", FIRMWARE / "protocol", FIRMWARE / "core" / "include",
            FIRMWARE / "core" / "src"]
    return sorted(p for d in dirs for p in d.rglob("*.h"))


def committed_layout_hash() -> int:
    text = (COMMITTED_MODEL / "ftte_model_data.h").read_text()
    return int(re.search(r"#define FTTE_MODEL_LAYOUT_HASH 0x([0-9a-fA-F]+)u", text).group(1), 16)


def build_native_board(model: Model | None = None, *, build_root: Path | None = None,
                       defines: dict[str, int] | None = None, cc: str | None = None) -> Path:
    """The native board program for `model`'s layout (None: the committed digits MLP), built
    once and cached under build/native_board/<key>/ by the hash of every source, header, flag
    and the model source. FTTE_NATIVE_BOARD=<path> skips the build. `defines` set the static
    sizes (FTTE_ARENA_BYTES, FTTE_STORE_BYTES, FTTE_BOARD_MAX_FRAME)."""
    override = os.environ.get("FTTE_NATIVE_BOARD")
    if override:
        if not os.access(override, os.X_OK):
            raise NativeBoardError(f"FTTE_NATIVE_BOARD={override} is not an executable")
        return Path(override)
    cc = cc or os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise NativeBoardError(f"no C compiler ({cc}) to build the native board; set CC or FTTE_NATIVE_BOARD")
    root = Path(build_root or BUILD_ROOT)
    model_source: tuple[str, str] | None = None
    if model is not None:
        from ftte.model.io import c_source, layout_hash  # noqa: PLC0415

        hash_value = layout_hash(model)
        if hash_value != committed_layout_hash():
            model_source = c_source(model, hash_value, origin=f"{model.name} (ftte.link.native)")
    flags = _float_flags() + WARNINGS + [f"-D{k}={v}" for k, v in sorted((defines or {}).items())]
    key = hashlib.sha256(repr((cc, flags, model_source)).encode())
    for path in _sources() + _headers() + [COMMITTED_MODEL / "ftte_model_data.c", COMMITTED_MODEL / "ftte_model_data.h"]:
        key.update(str(path.relative_to(ROOT)).encode())
        key.update(path.read_bytes())
    out_dir = root / key.hexdigest()[:16]
    binary = out_dir / "ftte_board"
    with _build_lock:
        if binary.is_file():
            return binary
        out_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=out_dir))
        try:
            model_dir = COMMITTED_MODEL
            if model_source is not None:
                model_dir = work / "model"
                model_dir.mkdir()
                (model_dir / "ftte_model_data.h").write_text(model_source[0])
                (model_dir / "ftte_model_data.c").write_text(model_source[1])
            includes = [f"-I{d}" for d in (KERNELS / "include", KERNELS / "src" / "ops", FIRMWARE / "protocol" / "include",
                                           FIRMWARE / "core" / "include", model_dir)]
            sources = _sources() + [model_dir / "ftte_model_data.c"]

            def compile_one(index_source: tuple[int, Path]) -> Path:
                index, source = index_source
                obj = work / f"{index:03d}_{source.stem}.o"
                run = subprocess.run([cc, *flags, *includes, "-c", str(source), "-o", str(obj)],
                                     capture_output=True, text=True)
                if run.returncode != 0:
                    raise NativeBoardError(f"compiling {source}: {run.stderr.strip()}")
                return obj

            with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                objects = list(pool.map(compile_one, enumerate(sources)))
            linked = work / "ftte_board"
            run = subprocess.run([cc, *flags, *map(str, objects), "-lm", "-o", str(linked)],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                raise NativeBoardError(f"linking the native board: {run.stderr.strip()}")
            os.replace(linked, binary)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return binary


class NativeBoardProcess:
    """A running native board: `path` is its pseudo-terminal (open it as a serial port)."""

    def __init__(self, process: asyncio.subprocess.Process, path: str):
        self.process = process
        self.path = path

    @classmethod
    async def start(cls, binary: Path | str, *, ram: int | None = None, board_id: int | None = None,
                    max_frame: int | None = None, storage: str | os.PathLike | None = None,
                    timeout: float = 10.0) -> "NativeBoardProcess":
        """Starts the program with --pty --watch-stdin (it ends when this process does) and
        reads the path it prints. `storage`: the file that keeps its provisioned weights across
        restarts (--storage, the board's flash)."""
        args = [str(binary), "--pty", "--watch-stdin"]
        if ram is not None:
            args += ["--ram", str(int(ram))]
        if board_id is not None:
            args += ["--id", f"{board_id:016x}"]
        if max_frame is not None:
            args += ["--max-frame", str(int(max_frame))]
        if storage is not None:
            args += ["--storage", os.fspath(storage)]
        process = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.PIPE,
                                                       stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        try:
            line = await asyncio.wait_for(process.stdout.readline(), timeout)
        except (asyncio.TimeoutError, TimeoutError):
            line = b""
        path = line.decode(errors="replace").strip()
        if not path.startswith("/"):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            _, err = await process.communicate()
            raise NativeBoardError(f"{binary} did not start: {err.decode(errors='replace').strip() or 'no pty path'}")
        return cls(process, path)

    async def diagnostics(self) -> str:
        """What the board wrote to stderr (its boot lines, storage, saves), once it has ended."""
        if self.process.returncode is None:
            raise RuntimeError("the board is still running: stop() it first")
        return (await self.process.stderr.read()).decode(errors="replace")

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def kill(self) -> None:
        """Ends the board at once (SIGKILL): what a vanished board looks like to the host."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 2.0)
            except (asyncio.TimeoutError, TimeoutError):
                self.kill()
                await self.process.wait()
        for stream in (self.process.stdin,):
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()


_BUILDER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ftte-native-build")


def _done(value: Path) -> "Future[Path]":
    future: Future[Path] = Future()
    future.set_result(value)
    return future


class EmulatedBoard(PortBoard):
    """A coordinator Board backed by a native board process: started when the coordinator
    provisions it, given its data shard, then driven over its pty like any serial board
    (PortBoard)."""

    def __init__(self, name: str, model: Model, x: np.ndarray, y: np.ndarray, ram_budget: int, *,
                 seed: int = 0, binary: Path | None = None, timings: LinkTimings = LinkTimings()):
        super().__init__(name, None, model, x, y, ram_budget, seed=seed, timings=timings, transport="emulated",
                         description=f"native firmware on a pty, {len(y)} samples")
        # The build (cached, and shared by every board of the layout) starts now, so that it is
        # done, or nearly, when the coordinator provisions the board within its task timeout.
        self._binary: Future[Path] = _BUILDER.submit(build_native_board, model) if binary is None else _done(binary)
        self._process: NativeBoardProcess | None = None

    async def _open(self) -> str:
        binary = await asyncio.wrap_future(self._binary)
        self._process = await NativeBoardProcess.start(binary, ram=self.info.ram_budget)
        self.url = self._process.path
        return self.url

    async def close(self) -> None:
        await super().close()
        with contextlib.suppress(Exception):
            if self._process is not None:
                await self._process.stop()
