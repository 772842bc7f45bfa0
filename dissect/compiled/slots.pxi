# Reading and writing the __slots__ of the Python objects the compiled paths share state with
# (included by packets.pyx first: one extension module).
#
# ``obj.attr`` from C goes through the type's attribute lookup and the member descriptor each
# time (tens of ns; a third of the compiled WebSocket/Socket.IO path's time went there). A slot is a
# fixed place in the object, at the offset its member descriptor holds: read here once per class
# (slot_offset, when the Python module configures the compiled core) and then read and written in
# place. Only for objects whose exact type was checked to be the configured class (a subclass
# could change nothing of the layout, but is not assumed); a slot never set reads as NULL, which
# raises AttributeError as Python would.

from cpython.ref cimport PyObject

cdef extern from *:
    """
    #include "structmember.h"
    /* The offset of a writable object slot (a member descriptor of T_OBJECT_EX), or -1. */
    static Py_ssize_t dissect_slot_offset(PyObject *descr) {
        PyMemberDef *m;
        if (Py_TYPE(descr) != &PyMemberDescr_Type) return -1;
        m = ((PyMemberDescrObject *)descr)->d_member;
        if (m->type != T_OBJECT_EX || (m->flags & READONLY)) return -1;
        return m->offset;
    }
    static inline PyObject *dissect_slot(PyObject *o, Py_ssize_t off) { return *(PyObject **)((char *)o + off); }
    static inline void dissect_slot_set(PyObject *o, Py_ssize_t off, PyObject *v) {
        PyObject **p = (PyObject **)((char *)o + off);
        PyObject *old = *p;
        Py_INCREF(v);
        *p = v;
        Py_XDECREF(old);
    }
    """
    Py_ssize_t dissect_slot_offset(PyObject *descr)
    PyObject *dissect_slot(PyObject *o, Py_ssize_t off) nogil
    void dissect_slot_set(PyObject *o, Py_ssize_t off, PyObject *v)


cdef Py_ssize_t slot_offset(cls, str name) except -1:
    """Where the slot ``name`` of instances of ``cls`` is (TypeError when it is not a plain slot)."""
    cdef object descr = getattr(cls, name)
    cdef Py_ssize_t off = dissect_slot_offset(<PyObject *> descr)
    if off < 0:
        raise TypeError(f"{cls.__name__}.{name} is not a slot")
    return off


cdef inline object sget(object o, Py_ssize_t off):
    """``o.<slot at off>``."""
    cdef PyObject *v = dissect_slot(<PyObject *> o, off)
    if v == NULL:
        raise AttributeError("a slot read before it was set")
    return <object> v


cdef inline void sset(object o, Py_ssize_t off, object v):
    """``o.<slot at off> = v``."""
    dissect_slot_set(<PyObject *> o, off, <PyObject *> v)
