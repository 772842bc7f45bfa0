# CSV rows formatted in C (included by packets.pyx: one extension module).
#
# The compiled twin of the function dissect.output.writers.row_formatter generates for a table
# (its ``fmt_batch``): a batch of rows to CSV lines, the UTF-8 bytes the writer writes. Each
# column has a kind, from the same type hints the generated f-string is made from:
#   i / I  int (I: None is empty)      t / T  timestamp, ns to epoch seconds (T: None is empty)
#   b      bool (true / false / empty)   f      float (float_text; None is empty)
#   v / V  vocabulary text, as it is      s      traffic text (csv_text: quoting, formula guard)
# ASCII text, ints and timestamps of 1e9 ns or more are written in C; anything else (non-ASCII
# text that needs quoting, floats, odd values) through the same Python helpers, so every cell is
# the f-string's byte for byte (tests/test_compiled.py).

from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy, strlen
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_CheckExact
from cpython.unicode cimport PyUnicode_Check
from cpython.long cimport PyLong_CheckExact

cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL
    long long PyLong_AsLongLongAndOverflow(object v, int *overflow) except? -1
    bint PyUnicode_IS_ASCII(object s)
    object PyObject_Format(object v, object spec)
    char *PyOS_double_to_string(double val, char format_code, int precision, int flags, int *ptype) except NULL
    double PyOS_string_to_double(const char *s, char **endptr, object overflow_exception) except? -1.0
    void PyMem_Free(void *p)
    int Py_DTSF_ADD_DOT_0

cdef extern from *:
    """
    /* "%lld" without printf's parsing, two digits a step */
    static const char dissect_pairs[201] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    static const unsigned long long dissect_pow10[20] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
        1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
        100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
        1000000000000000000ULL, 10000000000000000000ULL};
    static inline int dissect_lld(char *out, long long v) {
        int k = 0, n = 1;
        char *p;
        unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
        while (n < 20 && u >= dissect_pow10[n]) n++;
        if (v < 0) out[k++] = '-';
        p = out + k + n;
        while (u >= 100) {
            unsigned int r = (unsigned int)(u % 100);
            u /= 100;
            p -= 2;
            p[0] = dissect_pairs[2 * r];
            p[1] = dissect_pairs[2 * r + 1];
        }
        if (u >= 10) {
            p -= 2;
            p[0] = dissect_pairs[2 * u];
            p[1] = dissect_pairs[2 * u + 1];
        } else {
            p[-1] = (char)('0' + u);
        }
        return k + n;
    }
    /* memcpy of a cell's few bytes without a call: two overlapping copies of a fixed size */
    static inline void dissect_copy(char *d, const char *s, Py_ssize_t n) {
        if (n > 16) { memcpy(d, s, n); return; }
        if (n >= 8) { memcpy(d, s, 8); memcpy(d + n - 8, s + n - 8, 8); return; }
        if (n >= 4) { memcpy(d, s, 4); memcpy(d + n - 4, s + n - 4, 4); return; }
        if (n >= 2) { memcpy(d, s, 2); memcpy(d + n - 2, s + n - 2, 2); return; }
        if (n == 1) d[0] = s[0];
    }
    /* The value of an exact int that fits in a long long without a call: 1, or 0 (ask
       PyLong_AsLongLongAndOverflow). */
    static inline int dissect_small_int(PyObject *v, long long *out) {
    #if PY_VERSION_HEX >= 0x030C0000
        if (PyUnstable_Long_IsCompact((PyLongObject *)v)) {
            *out = (long long)PyUnstable_Long_CompactValue((PyLongObject *)v);
            return 1;
        }
        return 0;
    #else
        Py_ssize_t size = Py_SIZE(v);
        const digit *d = ((PyLongObject *)v)->ob_digit;
        switch (size) {
        case 0: *out = 0; return 1;
        case 1: *out = (long long)d[0]; return 1;
        case -1: *out = -(long long)d[0]; return 1;
        case 2: *out = (long long)d[0] | ((long long)d[1] << PyLong_SHIFT); return 1;
        case -2: *out = -((long long)d[0] | ((long long)d[1] << PyLong_SHIFT)); return 1;
        default: return 0;
        }
    #endif
    }
    """
    int dissect_lld(char *out, long long v) nogil
    void dissect_copy(char *d, const char *s, Py_ssize_t n) nogil
    int dissect_small_int(object v, long long *out)


cdef struct Buf:
    char *p
    Py_ssize_t n
    Py_ssize_t cap


cdef int _grow(Buf *b, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap = b.cap
    cdef char *q
    if b.n + need <= cap:
        return 0
    while b.n + need > cap:
        cap = cap * 2 if cap else 1 << 16
    q = <char *> realloc(b.p, cap)
    if q == NULL:
        raise MemoryError()
    b.p = q
    b.cap = cap
    return 0


cdef inline int _put(Buf *b, const char *s, Py_ssize_t n) except -1:
    if b.n + n > b.cap:
        _grow(b, n)
    dissect_copy(b.p + b.n, s, n)
    b.n += n
    return 0


cdef int _put_str(Buf *b, object s) except -1:
    cdef Py_ssize_t n
    cdef const char *u = PyUnicode_AsUTF8AndSize(s, &n)
    return _put(b, u, n)


cdef int _put_obj(Buf *b, object v) except -1:
    """f"{v}" of any value."""
    if type(v) is str:
        return _put_str(b, v)
    return _put_str(b, PyObject_Format(v, ""))


cdef int _put_int(Buf *b, object v) except -1:
    cdef int overflow = 0
    cdef long long x
    cdef char tmp[24]
    if PyLong_CheckExact(v):
        if dissect_small_int(v, &x):
            if b.n + 24 > b.cap:
                _grow(b, 24)
            b.n += dissect_lld(b.p + b.n, x)
            return 0
        x = PyLong_AsLongLongAndOverflow(v, &overflow)
        if not overflow:
            return _put(b, tmp, dissect_lld(tmp, x))
    return _put_obj(b, v)


cdef int _put_ts(Buf *b, object v, int digits, object ts_fn) except -1:
    cdef int overflow = 0
    cdef long long x
    cdef char tmp[32]
    cdef int k, cut
    if PyLong_CheckExact(v):
        x = PyLong_AsLongLongAndOverflow(v, &overflow)
        if not overflow and x >= 1000000000:
            if digits == 9:
                k = dissect_lld(tmp, x)
                cut = 9
            else:
                k = dissect_lld(tmp, x // 1000)
                cut = 6
            _put(b, tmp, k - cut)
            _put(b, ".", 1)
            return _put(b, tmp + k - cut, cut)
    return _put_str(b, ts_fn(v))


cdef int _put_text(Buf *b, object v, object text_fn) except -1:
    """'' if not v else csv_text(v): ASCII text in C (csv_text's rules), the rest through it."""
    cdef Py_ssize_t n, i, quotes = 0
    cdef const char *u
    cdef char c
    cdef bint formula, quote = False
    if v is None:
        return 0
    if type(v) is str and PyUnicode_IS_ASCII(v):
        u = PyUnicode_AsUTF8AndSize(v, &n)
        if n == 0:
            return 0
        c = u[0]
        formula = c == 61 or c == 43 or c == 45 or c == 64 or c == 9 or c == 13 or c == 39  # = + - @ \t \r '
        for i in range(n):
            c = u[i]
            if c == 44 or c == 10 or c == 13:  # , \n \r
                quote = True
            elif c == 34:  # "
                quote = True
                quotes += 1
        if quote:
            _grow(b, n + quotes + 3)
            b.p[b.n] = 34
            b.n += 1
            if formula:
                b.p[b.n] = 39
                b.n += 1
            if quotes:
                for i in range(n):
                    c = u[i]
                    b.p[b.n] = c
                    b.n += 1
                    if c == 34:
                        b.p[b.n] = 34
                        b.n += 1
            else:
                memcpy(b.p + b.n, u, n)
                b.n += n
            b.p[b.n] = 34
            b.n += 1
            return 0
        if formula:
            _put(b, "'", 1)
        return _put(b, u, n)
    if not v:
        return 0
    return _put_str(b, text_fn(v))


cdef int _put_float(Buf *b, object v, object float_fn) except -1:
    """float_text(v), repr(round(v, 6)): a finite float below 1e15 in C, by round's own steps (its
    six decimals correctly rounded, read back: the rounded double; then repr's shortest digits); any
    other value through ``float_fn``."""
    cdef double x, y
    cdef char *s
    if not PyFloat_CheckExact(v):
        return _put_str(b, float_fn(v))
    x = PyFloat_AS_DOUBLE(v)
    if not (-1e15 < x < 1e15):  # (NaN and the infinities too)
        return _put_str(b, float_fn(v))
    s = PyOS_double_to_string(x, b'f', 6, 0, NULL)
    try:
        y = PyOS_string_to_double(s, NULL, None)
    finally:
        PyMem_Free(s)
    s = PyOS_double_to_string(y, b'r', 0, Py_DTSF_ADD_DOT_0, NULL)
    try:
        _put(b, s, strlen(s))
    finally:
        PyMem_Free(s)
    return 0


def float_cell(v, float_fn):
    """The CSV cell _put_float writes for ``v`` (for the tests, beside writers.float_text)."""
    cdef Buf b
    b.p = NULL
    b.n = b.cap = 0
    try:
        _put_float(&b, v, float_fn)
        return PyBytes_FromStringAndSize(b.p, b.n).decode()
    finally:
        free(b.p)


def format_csv(const unsigned char[:] kinds, list rows, int digits, text_fn, float_fn, ts_fn, bools):
    """The CSV lines of ``rows`` (one per row, each ending in a newline), as UTF-8 bytes."""
    cdef Buf b
    cdef Py_ssize_t ncol = kinds.shape[0]
    cdef Py_ssize_t i
    cdef unsigned char k
    cdef object row, v
    b.p = NULL
    b.n = 0
    b.cap = 0
    try:
        for row in rows:
            if not isinstance(row, tuple):
                row = tuple(row)
            if len(<tuple> row) != ncol:
                raise ValueError(f"a row of {len(row)} columns where {ncol} were expected")
            for i in range(ncol):
                if i:
                    _put(&b, ",", 1)
                v = (<tuple> row)[i]
                k = kinds[i]
                if k == 105:  # i
                    _put_int(&b, v)
                elif k == 73:  # I
                    if v is not None:
                        _put_int(&b, v)
                elif k == 116:  # t
                    _put_ts(&b, v, digits, ts_fn)
                elif k == 84:  # T
                    if v is not None:
                        _put_ts(&b, v, digits, ts_fn)
                elif k == 98:  # b
                    if v is True:
                        _put(&b, "true", 4)
                    elif v is False:
                        _put(&b, "false", 5)
                    elif v is not None:
                        _put_str(&b, bools[v])
                elif k == 102:  # f
                    if v is not None:
                        _put_float(&b, v, float_fn)
                elif k == 118:  # v
                    _put_obj(&b, v)
                elif k == 86:  # V
                    if v is not None:
                        _put_obj(&b, v)
                else:  # s
                    _put_text(&b, v, text_fn)
            _put(&b, "\n", 1)
        return PyBytes_FromStringAndSize(b.p, b.n)
    finally:
        free(b.p)
