"""SCons builder of the ftte-native dev-platform: host gcc, a program called `program`.

Targets: the default builds the program; `exec` (or `upload`) runs it; `size` prints its size.
Optimisation is -O2 like the kernels' own build (kernels/Makefile); project flags come from
platformio.ini.
"""

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment

env = DefaultEnvironment()

env.Replace(
    AR="ar",
    AS="as",
    CC="gcc",
    CXX="g++",
    GDB="gdb",
    OBJCOPY="objcopy",
    RANLIB="ranlib",
    SIZETOOL="size",
    SIZEPRINTCMD="$SIZETOOL $SOURCES",
    PROGNAME="program",
)
env.Append(
    CCFLAGS=["-O2", "-g"],
    LIBS=["m"],
)

program = env.BuildProgram()

run = env.VerboseAction("$SOURCE $PROGRAM_ARGS", "Executing $SOURCE")
AlwaysBuild(env.Alias("exec", program, run))
AlwaysBuild(env.Alias("upload", program, run))
AlwaysBuild(env.Alias("size", program, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE")))

Default([program])
