"""The optional compiled core: Cython extensions built where a C compiler exists.

Metadata lives in pyproject.toml; this file only adds the extension modules of dissect/compiled/.
The build is optional, as aiohttp, yarl and multidict do it: when Cython is missing, the compiler
or the Python headers are absent, or compiling fails, the install still succeeds (with a warning)
and dissect runs its pure-Python code. ``DISSECT_NO_EXTENSIONS=1`` at install time skips the
build; at run time it makes an installed extension unused (dissect/fastpaths.py).
"""

from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

NO_EXTENSIONS = os.environ.get("DISSECT_NO_EXTENSIONS", "") not in ("", "0")
MODULES = ["dissect.compiled.packets"]


def extensions() -> list:
    if NO_EXTENSIONS:
        return []
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError:
        print("dissect: Cython is not installed: the pure-Python code will be used", file=sys.stderr)
        return []
    exts = [Extension(m, [m.replace(".", "/") + ".pyx"]) for m in MODULES]
    return cythonize(exts, compiler_directives={"language_level": "3"}, quiet=True)


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing: without a compiled core dissect is pure Python."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - any build failure leaves the pure-Python path
            self._warn(e)

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001
            self._warn(e)

    @staticmethod
    def _warn(e: Exception) -> None:
        print(f"dissect: the compiled core was not built ({e}); the pure-Python code will be used",
              file=sys.stderr)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
