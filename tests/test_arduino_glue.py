"""The ESP32 and nRF52840 Arduino glue (firmware/ports/arduino, esp32, nrf52840) compiled here
against a mock of the Arduino APIs (tests/arduino_mock: declarations only, with the signatures
of Arduino-ESP32 2.x and Adafruit's nRF52 core).

This is NOT a build for the boards: their PlatformIO platforms and Arduino cores come from
PlatformIO's registry, which is unreachable here, and nothing is linked or run. It proves that
the glue compiles against the firmware core's port interface (ftte_board.h) with each env's
own flags from platformio.ini (one source of truth for the sizes), with -Werror, and catches
drift when either side changes. The nRF52840 glue is also compiled for its Cortex-M4F with
arm-none-eabi-g++, which gives the static RAM the firmware takes there.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MOCK = ROOT / "tests" / "arduino_mock"
M4F = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
BOARDS = {"esp32dev": "FTTE_MOCK_ESP32", "feather_nrf52840": "FTTE_MOCK_NRF52840"}
NRF52840_PROGRAM_RAM = 248832  # the board's maximum_ram_size in PlatformIO (next to the SoftDevice)

platformio = pytest.importorskip("platformio.project.config", reason="platformio (extra dev) reads the envs")


def env_of(name: str) -> tuple[list[str], list[Path]]:
    """The env's -D/-I build flags (paths made absolute) and the glue sources its filter names."""
    config = platformio.ProjectConfig(str(ROOT / "platformio.ini"))
    joined: list[str] = []  # "-I path" comes split in two: the path joins its -I
    for flag in shlex.split(" ".join(config.get(f"env:{name}", "build_flags"))):
        if joined and joined[-1] == "-I":
            joined[-1] = f"-I{ROOT / flag}"
        else:
            joined.append(flag)
    folders = [t[2:-2] for t in " ".join(config.get(f"env:{name}", "build_src_filter")).split()
               if t.startswith("+<ports/")]
    sources = sorted(p for folder in folders for p in (ROOT / "firmware" / folder).glob("*.cpp"))
    return joined, sources


def compile_glue(compiler: str, name: str, extra: list[str], out: Path) -> list[Path]:
    flags, sources = env_of(name)
    assert sources, f"{name}: no .cpp glue in its build_src_filter"
    objects = []
    for source in sources:
        obj = out / f"{source.stem}.o"
        run = subprocess.run([compiler, "-std=gnu++17", "-Os", "-Wall", "-Wextra", "-Werror", f"-D{BOARDS[name]}",
                              f"-I{MOCK}", *flags, *extra, "-c", str(source), "-o", str(obj)],
                             capture_output=True, text=True)
        assert run.returncode == 0, f"{name}: {source.relative_to(ROOT)} does not compile:\n{run.stderr}"
        objects.append(obj)
    return objects


@pytest.mark.skipif(shutil.which("g++") is None, reason="no host g++")
@pytest.mark.parametrize("name", list(BOARDS))
def test_the_arduino_glue_compiles_against_the_core_with_host_gxx(name, tmp_path):
    objects = compile_glue("g++", name, [], tmp_path)
    names = {o.stem for o in objects}
    assert "ftte_arduino" in names and len(names) == 2  # the shared glue and the board's file


@pytest.mark.skipif(shutil.which("arm-none-eabi-g++") is None, reason="no arm-none-eabi-g++ (gcc-arm-none-eabi)")
def test_the_nrf52840_glue_compiles_for_its_cortex_m4f_and_its_ram_fits(tmp_path):
    objects = compile_glue("arm-none-eabi-g++", "feather_nrf52840", M4F, tmp_path)
    size = subprocess.run(["arm-none-eabi-size", *map(str, objects)], capture_output=True, text=True, check=True)
    bss = sum(int(line.split()[2]) for line in size.stdout.splitlines()[1:])
    print(f"\nnRF52840 glue: {bss:,} B of static RAM (arena, sample store, weights, frames, board state)")
    assert 128 * 1024 < bss < NRF52840_PROGRAM_RAM
