"""dissect's optional compiled core: Cython twins of the hot paths (``*.pyx``), built at install
time where a C compiler exists (``setup.py``). Nothing imports these modules but
:mod:`dissect.fastpaths`, which falls back to the pure-Python code when they are not built, fail
to import, or ``DISSECT_NO_EXTENSIONS=1`` is set; the Python code is the reference, and each
compiled path must give its rows byte for byte (``tests/test_compiled.py``).
"""
