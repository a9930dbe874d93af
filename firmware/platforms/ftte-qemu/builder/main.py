"""SCons builder of the ftte-qemu dev-platform: bare-metal ELF images for QEMU boards.

The board manifest (boards/*.json) says the architecture and the QEMU machine:

- build.arch "arm": Debian's arm-none-eabi-gcc with newlib-nano; runtime/arm/runtime.c
  (vector table, reset, newlib system calls over semihosting) is linked into every program,
  with the board's linker script from runtime/arm/.
- build.arch "riscv": Debian's riscv64-unknown-elf-gcc with picolibc; picolibc's own
  semihosting crt0 and console (--crt0=semihost --oslib=semihost), with the board's linker
  script from runtime/riscv/ sizing picolibc's layout.

The compilers come from the env's toolchain package (platform_packages in platformio.ini,
a folder of symlinks under firmware/toolchains/), which PlatformIO puts first on PATH.

Targets: the default builds $BUILD_DIR/firmware.elf and prints its memory use; `exec` (or
`upload`) runs it in QEMU with semihosting (its exit status is the program's); `size`
prints its section sizes.
"""

import os
import shlex
import sys

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment

env = DefaultEnvironment()
platform = env.PioPlatform()
board = env.BoardConfig()

arch = board.get("build.arch", "")
runtime_dir = os.path.join(platform.get_dir(), "runtime", arch)

if arch == "arm":
    prefix = "arm-none-eabi-"
    machine = [
        "-mcpu=%s" % board.get("build.cpu"),
        "-mthumb",
        "-mfloat-abi=%s" % board.get("build.float_abi", "hard"),
        "-mfpu=%s" % board.get("build.fpu", "fpv4-sp-d16"),
    ]
    # newlib-nano, float formatting in printf, our own startup (runtime/arm/runtime.c).
    libc_compile = []
    libc_link = ["--specs=nano.specs", "-u", "_printf_float", "-nostartfiles"]
elif arch == "riscv":
    prefix = "riscv64-unknown-elf-"
    machine = ["-march=%s" % board.get("build.march"), "-mabi=%s" % board.get("build.mabi")]
    # picolibc (Debian ships no newlib for this compiler): its semihosting crt0 and stdio.
    libc_compile = ["--specs=picolibc.specs"]
    libc_link = ["--specs=picolibc.specs", "--crt0=semihost", "--oslib=semihost"]
else:
    sys.stderr.write(
        "Error: ftte-qemu: board %s has build.arch %r; expected 'arm' or 'riscv'\n"
        % (env.subst("$BOARD"), arch)
    )
    env.Exit(1)

if not env.WhereIs(prefix + "gcc"):
    sys.stderr.write(
        "Error: ftte-qemu: %sgcc not found. Run tools/setup-platformio (it links the "
        "toolchain package firmware/toolchains/*/bin to the compilers on PATH); install the "
        "compiler with apt-get if it is missing.\n" % prefix
    )
    env.Exit(1)

env.Replace(
    AR=prefix + "gcc-ar",
    AS=prefix + "as",
    CC=prefix + "gcc",
    CXX=prefix + "g++",
    GDB=prefix + "gdb",
    OBJCOPY=prefix + "objcopy",
    RANLIB=prefix + "gcc-ranlib",
    SIZETOOL=prefix + "size",
    ARFLAGS=["rc"],
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.init|\.text|\.rodata|\.ARM\.exidx|\.data|\.tdata)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.tdata|\.tbss|\.bss|\.stack)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
)

# Linker script: the board's (runtime/<arch>/), or board_build.ldscript relative to the
# project.
ldscript = board.get("build.ldscript", "")
if ldscript and not os.path.isabs(ldscript) and not os.path.isfile(env.subst(ldscript)):
    ldscript = os.path.join(runtime_dir, ldscript)

env.Append(
    ASFLAGS=machine,
    ASPPFLAGS=["-x", "assembler-with-cpp"],
    CCFLAGS=machine + libc_compile + ["-O2", "-g", "-ffunction-sections", "-fdata-sections"],
    LINKFLAGS=machine
    + libc_link
    + [
        "-Wl,--gc-sections",
        "-Wl,-Map,%s" % os.path.join("$BUILD_DIR", "firmware.map"),
        "-Wl,--print-memory-usage",
    ],
    LIBS=["m"],
)
if ldscript:
    env.Replace(LDSCRIPT_PATH=ldscript)

# The runtime's sources, compiled into every program (application and tests).
env.BuildSources(os.path.join("$BUILD_DIR", "ftte_runtime"), runtime_dir)

elf = env.BuildProgram()

# Run the image in QEMU: the board's machine; semihosting for the output (to QEMU's stdout)
# and the exit status.
qemu = (
    [board.get("qemu.system"), "-M", board.get("qemu.machine")]
    + list(board.get("qemu.extra_args", []))
    + ["-nographic", "-monitor", "none", "-serial", "none", "-chardev", "stdio,id=console"]
    + ["-semihosting-config", "enable=on,target=native,chardev=console", "-kernel"]
)
run = env.VerboseAction(
    " ".join(shlex.quote(a) for a in qemu) + " $SOURCE", "Running $SOURCE in QEMU"
)
AlwaysBuild(env.Alias("exec", elf, run))
AlwaysBuild(env.Alias("upload", elf, run))
AlwaysBuild(env.Alias("size", elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE")))

Default([elf])
