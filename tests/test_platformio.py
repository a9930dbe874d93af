"""The PlatformIO build, offline: tools/setup-platformio on a fresh PLATFORMIO_CORE_DIR, then
the three offline envs of platformio.ini built and tested exactly as a developer would
(`pio run -e native|m4f_qemu|rv32_qemu`, `pio test -e ...`), and the self-test program run on
the host and in QEMU.

PlatformIO's registry is not reachable here: a step that asks it stalls about 61 s before it
fails, so every pio command must finish well under that (a registry stall is a failure even
when a later fallback would succeed). Board envs (esp32dev, feather_nrf52840) need the
registry and are not built.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "tools" / "setup-platformio"
PIO_TIMEOUT = 60  # seconds; a registry stall alone takes ~61 s

try:
    import platformio  # noqa: F401

    MISSING_PIO = None
except ImportError:
    MISSING_PIO = "platformio is not installed (pip install platformio, or run tools/setup-platformio)"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(MISSING_PIO is not None, reason=MISSING_PIO or ""),
]


def missing(*programs: str) -> str | None:
    absent = [p for p in programs if shutil.which(p) is None]
    return f"not installed: {', '.join(absent)}" if absent else None


def needs(*programs: str):
    reason = missing(*programs)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


@pytest.fixture(scope="module")
def pio_env(tmp_path_factory) -> dict[str, str]:
    """The environment of every pio command: a core dir made from scratch by
    tools/setup-platformio, and a build dir of the test's own."""
    base = tmp_path_factory.mktemp("platformio")
    env = dict(os.environ)
    env.update(
        PLATFORMIO_CORE_DIR=str(base / "core"),
        PLATFORMIO_BUILD_DIR=str(base / "build"),
        PYTHON=sys.executable,
    )
    env.pop("PLATFORMIO_SETTING_ENABLE_TELEMETRY", None)
    started = time.monotonic()
    setup = subprocess.run([str(SETUP)], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert f"export PLATFORMIO_CORE_DIR={base / 'core'}" in setup.stdout
    assert (base / "core" / "packages" / "tool-scons" / ".piopm").is_file()
    # Idempotent: a second run succeeds and prints the same core dir.
    again = subprocess.run([str(SETUP)], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "wrote" not in again.stdout
    assert time.monotonic() - started < 120
    return env


def pio(env: dict[str, str], *args: str) -> str:
    """Runs `pio <args>` from the repository root; returns its output. Fails on an error
    status, and on a run slow enough to have waited for the registry."""
    command = [sys.executable, "-m", "platformio", *args]
    started = time.monotonic()
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=PIO_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"pio {' '.join(args)} ran over {PIO_TIMEOUT} s (a registry stall?):\n"
                    f"{error.stdout or ''}{error.stderr or ''}")
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"pio {' '.join(args)} failed:\n{output}"
    assert "HTTPClientError" not in output, output
    # Only the local packages are ever "installed" (a .pio-link to a folder of the repo).
    fetched = [spec for spec in re.findall(r"Installing (\S+)", output)
               if not spec.startswith("symlink://")]
    assert not fetched, f"pio {' '.join(args)} installed {fetched} from the registry"
    assert elapsed < PIO_TIMEOUT, f"pio {' '.join(args)} took {elapsed:.0f} s"
    return output


def check_selftest_output(output: str) -> None:
    """The self-test's report: the plan fits, a step writes exactly the planned bytes, the
    loss is finite and falls."""
    assert "ftte selftest: PASS" in output, output
    planned = int(re.search(r"^planned arena bytes: (\d+) ", output, re.M).group(1))
    written = int(re.search(r"^arena bytes written by step 1: (\d+)$", output, re.M).group(1))
    assert 0 < planned <= 16384
    assert written == planned
    first = float(re.search(r"^step 1 loss: ([0-9.]+)$", output, re.M).group(1))
    last = float(re.search(r"^step \d+ loss: ([0-9.]+)$", output.split("step 1 loss")[1],
                           re.M).group(1))
    assert 0.5 < first < 5.0  # about ln(5) for 5 classes at initialisation
    assert last < 0.5 * first


def check_unity_report(output: str, env_name: str) -> None:
    """`pio test` passed every case of the trainer suite, and ran at least four."""
    cases = re.findall(r"test_main\.c:\d+: (test_\w+)\s+\[PASSED\]", output)
    assert len(cases) >= 4, output
    assert "[FAILED]" not in output and "ERRORED" not in output, output
    assert re.search(rf"{env_name}\s+test_trainer\s+PASSED", output), output


def run_qemu(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)


QEMU_COMMON = ["-nographic", "-monitor", "none", "-serial", "none",
               "-chardev", "stdio,id=console",
               "-semihosting-config", "enable=on,target=native,chardev=console"]


# ---- native ---------------------------------------------------------------------------------

@needs("gcc")
def test_native_builds_and_the_selftest_passes(pio_env):
    output = pio(pio_env, "run", "-e", "native")
    assert "libftte_kernels.a" in output  # the kernels are built as a library
    program = Path(pio_env["PLATFORMIO_BUILD_DIR"]) / "native" / "program"
    result = subprocess.run([str(program)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    check_selftest_output(result.stdout)


@needs("gcc")
def test_native_unity_tests_pass(pio_env):
    check_unity_report(pio(pio_env, "test", "-e", "native"), "native")


# ---- Cortex-M4F (QEMU mps2-an386) -----------------------------------------------------------

@needs("arm-none-eabi-gcc")
def test_m4f_builds_within_256_kb_of_ram(pio_env):
    output = pio(pio_env, "run", "-e", "m4f_qemu")
    ram = re.search(r"RAM:\s+(\d+) B\s+256 KB", output)
    assert ram and int(ram.group(1)) < 256 * 1024, output
    elf = Path(pio_env["PLATFORMIO_BUILD_DIR"]) / "m4f_qemu" / "firmware.elf"
    assert elf.read_bytes()[:4] == b"\x7fELF"


@needs("arm-none-eabi-gcc", "qemu-system-arm")
def test_m4f_selftest_passes_in_qemu(pio_env):
    pio(pio_env, "run", "-e", "m4f_qemu")
    elf = Path(pio_env["PLATFORMIO_BUILD_DIR"]) / "m4f_qemu" / "firmware.elf"
    result = run_qemu(["qemu-system-arm", "-M", "mps2-an386", *QEMU_COMMON, "-kernel", str(elf)])
    assert result.returncode == 0, result.stdout + result.stderr
    check_selftest_output(result.stdout)


@needs("arm-none-eabi-gcc", "qemu-system-arm", "timeout")
def test_m4f_unity_tests_pass_in_qemu(pio_env):
    check_unity_report(pio(pio_env, "test", "-e", "m4f_qemu"), "m4f_qemu")


# ---- RV32IMC (QEMU virt) --------------------------------------------------------------------

@needs("riscv64-unknown-elf-gcc")
def test_rv32_builds_within_256_kb_of_ram(pio_env):
    output = pio(pio_env, "run", "-e", "rv32_qemu")
    ram = re.search(r"ram:\s+(\d+) B\s+256 KB", output)
    assert ram and int(ram.group(1)) < 256 * 1024, output


@needs("riscv64-unknown-elf-gcc", "qemu-system-riscv32")
def test_rv32_selftest_passes_in_qemu(pio_env):
    pio(pio_env, "run", "-e", "rv32_qemu")
    elf = Path(pio_env["PLATFORMIO_BUILD_DIR"]) / "rv32_qemu" / "firmware.elf"
    result = run_qemu(["qemu-system-riscv32", "-M", "virt", "-bios", "none", *QEMU_COMMON,
                       "-kernel", str(elf)])
    assert result.returncode == 0, result.stdout + result.stderr
    check_selftest_output(result.stdout)


@needs("riscv64-unknown-elf-gcc", "qemu-system-riscv32", "timeout")
def test_rv32_unity_tests_pass_in_qemu(pio_env):
    check_unity_report(pio(pio_env, "test", "-e", "rv32_qemu"), "rv32_qemu")


# ---- the board envs stay declared --------------------------------------------------------

def test_board_envs_are_declared_but_not_default():
    """esp32dev and the nRF52840 env are in platformio.ini for people with boards, point at
    their ports' folders, and are not among default_envs (a plain `pio run` here would
    otherwise wait for the registry)."""
    from platformio.project.config import ProjectConfig

    config = ProjectConfig(str(ROOT / "platformio.ini"))
    envs = config.envs()
    assert {"native", "m4f_qemu", "rv32_qemu", "esp32dev", "feather_nrf52840"} <= set(envs)
    assert set(config.default_envs()) == {"native", "m4f_qemu", "rv32_qemu"}
    assert config.get("env:esp32dev", "platform") == "espressif32"
    assert config.get("env:feather_nrf52840", "platform") == "nordicnrf52"
    for env_name, port in (("esp32dev", "esp32"), ("feather_nrf52840", "nrf52840")):
        assert config.get(f"env:{env_name}", "framework") == ["arduino"]
        source_filter = " ".join(config.get(f"env:{env_name}", "build_src_filter")).split()
        assert {f"+<ports/{port}/>", "+<ports/arduino/>", "+<core/src/>"} <= set(source_filter)
        assert (ROOT / "firmware" / "ports" / port / "README.md").is_file()
