"""PlatformIO test runner for `test_framework = custom`: Unity's, without the registry.

PlatformIO's Unity runner installs ThrowTheSwitch's Unity from its registry (not reachable on
FTTE's machines) and generates a unity_config.c per framework. This runner keeps everything
else of it (building each firmware/test/test_*/ folder as a program, running it natively or
through `test_testing_command`, parsing Unity's `file:line:test:PASS|FAIL: message` lines and
the `N Tests N Failures N Ignored` summary) and replaces those two steps: no library to
install, and firmware/test/unity.h prints through stdio itself.
"""

from platformio.test.runners.unity import UnityTestRunner


class CustomTestRunner(UnityTestRunner):
    EXTRA_LIB_DEPS = None

    def configure_build_env(self, env):
        return env
