# summary.json's per-batch figures in C (included by packets.pyx: one extension module).
#
# The compiled twin of dissect.output.batch_counts.ColumnCounts (switch fastpaths.COMPILED_SUMMARY):
# the figures SummaryBuilder takes from a batch of rows (Counters of cells and of combinations of
# cells, integer totals, true cells, the finite values of a distribution) in one walk over the
# batch's row tuples, instead of a list per column and a pass per figure. Counting goes through a
# dict, as Counter does (the same keys, equal by identity or ==, in the order they first appear);
# a row whose cells are the last row's objects adds to the last key without a lookup. A total, a
# true count or a list of values meets a cell of another type than the common ones (exact int,
# exact float, None, True, False): that figure is left to the Python code (None in its place).
# A batch that is not a list of tuples as wide as the table: None, the Python code counts it all.

from libc.math cimport isnan, isinf
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_CheckExact

cdef extern from *:
    """
    static inline int dissect_add_overflow(long long a, long long b, long long *out) {
        return __builtin_add_overflow(a, b, out);
    }
    """
    int dissect_add_overflow(long long a, long long b, long long *out) nogil

cdef object SUM_TRUE = True
cdef object SUM_FALSE = False
cdef object SUM_NONE = None

cdef enum:
    SUM_MAX_OPS = 8
    SUM_MAX_ARITY = 4


cdef class KeyCounts:
    """The counts of one figure's keys (cells or tuples of cells), in first-appearance order."""
    cdef dict index  # key -> slot
    cdef long long *counts
    cdef Py_ssize_t size, cap, last

    def __cinit__(self):
        self.index = {}
        self.counts = NULL
        self.size = 0
        self.cap = 0
        self.last = -1

    def __dealloc__(self):
        free(self.counts)

    cdef int add(self, object key) except -1:
        cdef object s = self.index.get(key)
        cdef Py_ssize_t i
        cdef long long *grown
        if s is None:
            i = self.size
            if i == self.cap:
                self.cap = 16 if self.cap == 0 else self.cap * 2
                grown = <long long *> realloc(self.counts, self.cap * sizeof(long long))
                if grown == NULL:
                    raise MemoryError()
                self.counts = grown
            self.counts[i] = 0
            self.index[key] = i
            self.size += 1
        else:
            i = <Py_ssize_t> s
        self.counts[i] += 1
        self.last = i
        return 0

    cdef dict result(self):
        cdef dict out = {}
        for key, i in self.index.items():
            out[key] = self.counts[<Py_ssize_t> i]
        return out


def summary_counts(list rows, Py_ssize_t width, tuple combos, tuple cells, tuple totals, tuple trues,
                   tuple values):
    """The figures of a batch of ``rows`` (tuples of ``width`` cells or more), each given by its
    column indices: ``combos`` (tuples of indices: Counters of the rows' combinations), ``cells``
    (Counters of cells), ``totals`` (sums of integer cells), ``trues`` (true cells), ``values``
    (a distribution's finite values). Returns a tuple of five lists (dicts, dicts, ints, ints,
    lists; None for a figure left to the Python code), or None for a batch left to it."""
    cdef Py_ssize_t n = len(rows), r, k, m
    cdef Py_ssize_t n_combos = len(combos), n_cells = len(cells), n_totals = len(totals)
    cdef Py_ssize_t n_trues = len(trues), n_values = len(values)
    cdef Py_ssize_t combo_idx[SUM_MAX_OPS][SUM_MAX_ARITY]
    cdef Py_ssize_t combo_arity[SUM_MAX_OPS]
    cdef PyObject *combo_last[SUM_MAX_OPS][SUM_MAX_ARITY]
    cdef Py_ssize_t cell_idx[SUM_MAX_OPS]
    cdef Py_ssize_t total_idx[SUM_MAX_OPS]
    cdef Py_ssize_t true_idx[SUM_MAX_OPS]
    cdef Py_ssize_t value_idx[SUM_MAX_OPS]
    cdef PyObject *cell_last[SUM_MAX_OPS]
    cdef long long total_sum[SUM_MAX_OPS]
    cdef long long true_sum[SUM_MAX_OPS]
    cdef bint total_bad[SUM_MAX_OPS]
    cdef bint true_bad[SUM_MAX_OPS]
    cdef bint value_bad[SUM_MAX_OPS]
    cdef PyObject *p
    cdef object row, key, v
    cdef KeyCounts kc
    cdef bint same
    cdef long long x
    cdef int overflow
    cdef double f
    if n_combos > SUM_MAX_OPS or n_cells > SUM_MAX_OPS or n_totals > SUM_MAX_OPS \
            or n_trues > SUM_MAX_OPS or n_values > SUM_MAX_OPS:
        return None
    for k in range(n_combos):
        combo_arity[k] = len(combos[k])
        if combo_arity[k] > SUM_MAX_ARITY or combo_arity[k] < 1:
            return None
        for m in range(combo_arity[k]):
            combo_idx[k][m] = combos[k][m]
            if combo_idx[k][m] >= width or combo_idx[k][m] < 0:
                return None
            combo_last[k][m] = NULL
    for k in range(n_cells):
        cell_idx[k] = cells[k]
        cell_last[k] = NULL
    for k in range(n_totals):
        total_idx[k] = totals[k]
        total_sum[k] = 0
        total_bad[k] = False
    for k in range(n_trues):
        true_idx[k] = trues[k]
        true_sum[k] = 0
        true_bad[k] = False
    for k in range(n_values):
        value_idx[k] = values[k]
        value_bad[k] = False
    for k in range(n_cells):
        if cell_idx[k] >= width or cell_idx[k] < 0:
            return None
    for k in range(n_totals):
        if total_idx[k] >= width or total_idx[k] < 0:
            return None
    for k in range(n_trues):
        if true_idx[k] >= width or true_idx[k] < 0:
            return None
    for k in range(n_values):
        if value_idx[k] >= width or value_idx[k] < 0:
            return None
    cdef list combo_counts = [KeyCounts() for k in range(n_combos)]
    cdef list cell_counts = [KeyCounts() for k in range(n_cells)]
    cdef list value_lists = [[] for k in range(n_values)]
    for r in range(n):
        # the rows and their cells' objects are cold in memory: ask for the tuple 16 rows ahead,
        # and for the cells of the totals and values (numbers: new objects) of the tuple 8 ahead
        if r + 2 * FANOUT_AHEAD < n:
            dissect_prefetch(PyList_GET_ITEM(rows, r + 2 * FANOUT_AHEAD))
        if r + FANOUT_AHEAD < n:
            row = <object> PyList_GET_ITEM(rows, r + FANOUT_AHEAD)
            if PyTuple_Check(row) and PyTuple_GET_SIZE(row) >= width:
                for k in range(n_totals):
                    dissect_prefetch(PyTuple_GET_ITEM(row, total_idx[k]))
                for k in range(n_values):
                    dissect_prefetch(PyTuple_GET_ITEM(row, value_idx[k]))
                for k in range(n_combos):
                    dissect_prefetch(PyTuple_GET_ITEM(row, combo_idx[k][combo_arity[k] - 1]))
        row = <object> PyList_GET_ITEM(rows, r)
        if not PyTuple_Check(row) or PyTuple_GET_SIZE(row) < width:
            return None
        for k in range(n_combos):
            same = combo_last[k][0] != NULL
            for m in range(combo_arity[k]):
                if PyTuple_GET_ITEM(row, combo_idx[k][m]) != combo_last[k][m]:
                    same = False
                    break
            kc = <KeyCounts> PyList_GET_ITEM(combo_counts, k)
            if same:
                kc.counts[kc.last] += 1
                continue
            key = PyTuple_New(combo_arity[k])
            for m in range(combo_arity[k]):
                p = PyTuple_GET_ITEM(row, combo_idx[k][m])
                v = <object> p
                Py_INCREF(v)
                PyTuple_SET_ITEM(key, m, v)
                combo_last[k][m] = p  # borrowed: the row (held by rows) keeps it alive
            kc.add(key)
        for k in range(n_cells):
            p = PyTuple_GET_ITEM(row, cell_idx[k])
            kc = <KeyCounts> PyList_GET_ITEM(cell_counts, k)
            if p == cell_last[k]:
                kc.counts[kc.last] += 1
                continue
            kc.add(<object> p)
            cell_last[k] = p
        for k in range(n_totals):
            if total_bad[k]:
                continue
            v = <object> PyTuple_GET_ITEM(row, total_idx[k])
            if not PyLong_CheckExact(v):
                total_bad[k] = True
                continue
            x = PyLong_AsLongLongAndOverflow(v, &overflow)
            if overflow or dissect_add_overflow(total_sum[k], x, &total_sum[k]):
                total_bad[k] = True
        for k in range(n_trues):
            if true_bad[k]:
                continue
            p = PyTuple_GET_ITEM(row, true_idx[k])
            if p == <PyObject *> SUM_TRUE:
                true_sum[k] += 1
            elif p == <PyObject *> SUM_FALSE or p == <PyObject *> SUM_NONE:
                pass
            elif PyLong_CheckExact(<object> p):
                x = PyLong_AsLongLongAndOverflow(<object> p, &overflow)
                if x == 1 and not overflow:
                    true_sum[k] += 1
            else:
                true_bad[k] = True
        for k in range(n_values):
            if value_bad[k]:
                continue
            p = PyTuple_GET_ITEM(row, value_idx[k])
            if p == <PyObject *> SUM_NONE:
                continue
            v = <object> p
            if PyFloat_CheckExact(v):
                f = PyFloat_AS_DOUBLE(v)
                if isnan(f) or isinf(f):
                    continue
            elif PyLong_CheckExact(v):
                PyLong_AsLongLongAndOverflow(v, &overflow)
                if overflow:
                    value_bad[k] = True
                    continue
            else:
                value_bad[k] = True
                continue
            (<list> PyList_GET_ITEM(value_lists, k)).append(v)
    return (
        [(<KeyCounts> c).result() for c in combo_counts],
        [(<KeyCounts> c).result() for c in cell_counts],
        [None if total_bad[k] else total_sum[k] for k in range(n_totals)],
        [None if true_bad[k] else true_sum[k] for k in range(n_trues)],
        [None if value_bad[k] else value_lists[k] for k in range(n_values)],
    )
