/* confsfu.forwarding._reception: Reception, one incoming media SSRC's receive statistics in C
 * (sans-IO: time is an argument): sequence numbers extended, loss and the NACKs it is owed, its
 * VP8 picture ids unwrapped, and the layer it carries (and the LayerCounts of its source). The
 * specification is confsfu.forwarding.reception.Reception; the intake (confsfu.server._wire)
 * counts every packet here through the C API in _reception.h, without Python.
 */
#include "forwarding/_reception.h"
#include "bandwidth/_counts.h"

#include <structmember.h>

#include <stddef.h>
#include <string.h>

enum { MAX_TRACKED_MISSING = 512 };

static const CountsApi *counts_api; /* confsfu.bandwidth._counts: the meter's type */

static PyTypeObject ReceptionType;

static int reception_on_packet(Reception *t, long long now_ms, int seq, Py_ssize_t size) {
    t->last_packet_ms = now_ms;
    t->bytes_received += (unsigned long long)size;
    if (t->highest_ext < 0) {
        t->highest_ext = t->base_ext = t->last_ext = seq;
        t->received = 1;
        return 1;
    }
    int delta = (uint16_t)(seq - (int)(t->highest_ext & 0xffff));
    if (delta == 0)
        return 0;
    int64_t ext;
    if (delta < 0x8000) {
        ext = t->highest_ext + delta;
        int64_t first_gap = t->highest_ext + 1;
        if (ext - first_gap > MAX_TRACKED_MISSING)
            first_gap = ext - MAX_TRACKED_MISSING; /* only the newest gaps are kept */
        int gaps = (int)(ext - first_gap);
        if (gaps > 0) {
            if (t->missing == NULL &&
                (t->missing = PyMem_Malloc(MAX_TRACKED_MISSING * sizeof(Missing))) == NULL)
                return -1;
            int drop = t->n_missing + gaps - MAX_TRACKED_MISSING;
            if (drop > 0) {
                t->n_missing -= drop;
                memmove(t->missing, t->missing + drop, (size_t)t->n_missing * sizeof(Missing));
            }
            for (int64_t gap = first_gap; gap < ext; gap++)
                t->missing[t->n_missing++] = (Missing){gap, now_ms, 0};
        }
        t->highest_ext = ext;
    } else {
        ext = t->highest_ext - (0x10000 - delta);
        int lo = 0, hi = t->n_missing;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (t->missing[mid].ext < ext)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == t->n_missing || t->missing[lo].ext != ext)
            return 0; /* a duplicate, or older than anything tracked */
        t->n_missing--;
        memmove(t->missing + lo, t->missing + lo + 1, (size_t)(t->n_missing - lo) * sizeof(Missing));
    }
    t->received++;
    t->last_ext = ext;
    return 1;
}

static long long reception_unwrap_picture(Reception *t, long long value) {
    long long extended = !t->has_picture
                             ? (value & 0x7fff)
                             : t->last_picture + (((value - t->last_picture + 0x4000) & 0x7fff) - 0x4000);
    t->has_picture = 1;
    t->last_picture = extended;
    return extended;
}

static PyObject *reception_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Reception *self = (Reception *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->highest_ext = self->last_ext = -1; /* no packet yet */
    return (PyObject *)self;
}

static int reception_init(Reception *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"ssrc", "nack_delay_ms", "nack_retries", NULL};
    unsigned int ssrc;
    int delay = 10, retries = 5;
    if (self->initialised) {
        PyErr_SetString(PyExc_RuntimeError, "a Reception is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "I|$ii", names, &ssrc, &delay, &retries))
        return -1;
    if (delay < 0 || retries < 0) {
        PyErr_SetString(PyExc_ValueError, "nack_delay_ms and nack_retries are at least 0");
        return -1;
    }
    self->ssrc = ssrc;
    self->nack_delay_ms = delay;
    self->nack_retries = retries;
    self->initialised = 1;
    return 0;
}

/* Whether __init__ ran; else an exception is set. */
static int reception_ready(Reception *self) {
    if (!self->initialised)
        PyErr_SetString(PyExc_RuntimeError, "the Reception was never initialised");
    return self->initialised;
}

static int reception_traverse(Reception *self, visitproc visit, void *arg) {
    Py_VISIT(self->key);
    Py_VISIT(self->meter);
    return 0;
}

static int reception_clear(Reception *self) {
    Py_CLEAR(self->key);
    Py_CLEAR(self->meter);
    return 0;
}

static void reception_dealloc(Reception *self) {
    PyObject_GC_UnTrack(self);
    reception_clear(self);
    PyMem_Free(self->missing);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *reception_on_packet_py(Reception *self, PyObject *args) {
    long long now_ms;
    int seq;
    Py_ssize_t size;
    if (!reception_ready(self) || !PyArg_ParseTuple(args, "Lin", &now_ms, &seq, &size))
        return NULL;
    if (seq < 0 || seq > 0xffff)
        return PyErr_Format(PyExc_ValueError, "a sequence number is 0 to 65535, not %d", seq);
    if (size < 0)
        return PyErr_Format(PyExc_ValueError, "a packet's size is at least 0, not %zd", size);
    int accepted = reception_on_packet(self, now_ms, seq, size);
    if (accepted < 0)
        return PyErr_NoMemory();
    return PyBool_FromLong(accepted);
}

static PyObject *reception_nacks_due(Reception *self, PyObject *arg) {
    if (!reception_ready(self))
        return NULL;
    long long now_ms = PyLong_AsLongLong(arg);
    if (now_ms == -1 && PyErr_Occurred())
        return NULL;
    PyObject *due = PyList_New(0);
    int kept = 0;
    for (int i = 0; due != NULL && i < self->n_missing; i++) {
        Missing m = self->missing[i];
        if (m.sent >= self->nack_retries)
            continue; /* asked for often enough: forgotten */
        if (now_ms - m.first_ms >= (long long)self->nack_delay_ms * (1 + m.sent)) {
            m.sent++;
            PyObject *seq = PyLong_FromLong((long)(m.ext & 0xffff));
            if (seq == NULL || PyList_Append(due, seq) < 0)
                Py_CLEAR(due);
            Py_XDECREF(seq);
        }
        self->missing[kept++] = m;
    }
    if (due != NULL)
        self->n_missing = kept;
    return due;
}

/* next_nack_ms() -> when nacks_due will next have something, or None */
static PyObject *reception_next_nack_ms(Reception *self, PyObject *unused) {
    if (!reception_ready(self))
        return NULL;
    long long next = 0;
    int found = 0;
    for (int i = 0; i < self->n_missing; i++) {
        Missing m = self->missing[i];
        if (m.sent >= self->nack_retries)
            continue;
        long long due = m.first_ms + (long long)self->nack_delay_ms * (1 + m.sent);
        if (!found || due < next)
            next = due;
        found = 1;
    }
    return found ? PyLong_FromLongLong(next) : Py_NewRef(Py_None);
}

static PyTypeObject *ReportType; /* the values of one RTCP report block, a named tuple */

static PyStructSequence_Field report_fields[] = {
    {"ssrc", NULL}, {"fraction_lost", NULL}, {"packets_lost", NULL},
    {"highest_sequence", NULL}, {"jitter", NULL}, {NULL, NULL},
};

static PyStructSequence_Desc report_desc = {
    "confsfu.forwarding._reception.ReceptionReport",
    "The values of one RTCP report block (RFC 3550 6.4.1), as of now.", report_fields, 5};

static PyObject *reception_report(Reception *self, PyObject *unused) {
    if (!reception_ready(self))
        return NULL;
    int started = self->highest_ext >= 0;
    int64_t expected = started ? self->highest_ext - self->base_ext + 1 : 0;
    int64_t lost = expected - self->received > 0 ? expected - self->received : 0;
    int64_t expected_interval = expected - self->expected_prior;
    int64_t lost_interval = expected_interval - (self->received - self->received_prior);
    self->expected_prior = expected;
    self->received_prior = self->received;
    long fraction = 0;
    if (expected_interval > 0 && lost_interval > 0) {
        int64_t f = (lost_interval << 8) / expected_interval;
        fraction = (long)(f < 255 ? f : 255);
    }
    PyObject *report = PyStructSequence_New(ReportType);
    if (report == NULL)
        return NULL;
    PyObject *values[5] = {
        PyLong_FromUnsignedLong(self->ssrc), PyLong_FromLong(fraction),
        PyLong_FromLongLong(lost < 0x7fffff ? lost : 0x7fffff),
        PyLong_FromLongLong((started ? self->highest_ext : 0) & 0xffffffff), PyLong_FromLong(0)};
    for (int i = 0; i < 5; i++) {
        if (values[i] == NULL) {
            for (int j = i; j < 5; j++)
                Py_XDECREF(values[j]);
            Py_DECREF(report);
            return NULL;
        }
        PyStructSequence_SET_ITEM(report, i, values[i]);
    }
    return report;
}

static PyObject *reception_unwrap_picture_py(Reception *self, PyObject *arg) {
    if (!reception_ready(self))
        return NULL;
    long long value = PyLong_AsLongLong(arg);
    if (value == -1 && PyErr_Occurred())
        return NULL;
    /* Only its 15 bits count (masked first: no arithmetic on a far-out value). */
    return PyLong_FromLongLong(reception_unwrap_picture(self, value & 0x7fff));
}

static PyObject *reception_route(Reception *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"key", "is_video", "layer", "meter", NULL};
    PyObject *key, *meter = Py_None;
    int is_video, layer;
    if (!reception_ready(self) ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "Opi|O", names, &key, &is_video, &layer, &meter))
        return NULL;
    if (key == Py_None) {
        PyErr_SetString(PyExc_TypeError, "a track's key is a layer key, not None");
        return NULL;
    }
    if (meter != Py_None && !PyObject_TypeCheck(meter, counts_api->type)) {
        PyErr_SetString(PyExc_TypeError, "the meter is the source's LayerCounts or None");
        return NULL;
    }
    if (layer < 0 || layer > 2) {
        PyErr_SetString(PyExc_ValueError, "a simulcast layer is 0 to 2");
        return NULL;
    }
    Py_XSETREF(self->key, Py_NewRef(key));
    Py_XSETREF(self->meter, meter == Py_None ? NULL : Py_NewRef(meter));
    self->is_video = is_video;
    self->layer = layer;
    Py_RETURN_NONE;
}

static PyObject *reception_get_started(Reception *self, void *unused) {
    return PyBool_FromLong(self->highest_ext >= 0);
}

static PyObject *reception_get_key(Reception *self, void *unused) {
    return Py_NewRef(self->key != NULL ? self->key : Py_None);
}

static PyMethodDef reception_methods[] = {
    {"on_packet", (PyCFunction)reception_on_packet_py, METH_VARARGS,
     "on_packet(now_ms, sequence_number, size_bytes): count a packet; False when it is a "
     "duplicate or too old to matter."},
    {"nacks_due", (PyCFunction)reception_nacks_due, METH_O,
     "nacks_due(now_ms): the 16-bit sequence numbers to NACK now."},
    {"next_nack_ms", (PyCFunction)reception_next_nack_ms, METH_NOARGS,
     "next_nack_ms(): when nacks_due will next have a number to NACK, or None."},
    {"report", (PyCFunction)reception_report, METH_NOARGS,
     "report() -> ReceptionReport(ssrc, fraction_lost, packets_lost, highest_sequence, jitter),"
     " as of now; resets the interval counters of fraction lost."},
    {"unwrap_picture", (PyCFunction)reception_unwrap_picture_py, METH_O,
     "unwrap_picture(picture_id): the 15-bit VP8 picture id on an unbounded int."},
    {"route", (PyCFunction)(void (*)(void))reception_route, METH_VARARGS | METH_KEYWORDS,
     "route(key, is_video, layer, meter=None): what an Intake does with its packets (`meter`:"
     " the LayerCounts of its source)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef reception_members[] = {
    {"ssrc", T_UINT, offsetof(Reception, ssrc), READONLY, NULL},
    {"bytes_received", T_ULONGLONG, offsetof(Reception, bytes_received), READONLY, NULL},
    {"last_packet_ms", T_LONGLONG, offsetof(Reception, last_packet_ms), READONLY, NULL},
    {"last_ext", T_LONGLONG, offsetof(Reception, last_ext), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef reception_getset[] = {
    {"started", (getter)reception_get_started, NULL, "a packet has been counted", NULL},
    {"key", (getter)reception_get_key, NULL, "the layer key its packets carry, or None", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ReceptionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "confsfu.forwarding._reception.Reception",
    .tp_doc = "Reception(ssrc, *, nack_delay_ms=10, nack_retries=5): one incoming media SSRC "
              "(the C twin of confsfu.forwarding.reception.Reception).",
    .tp_basicsize = sizeof(Reception),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = reception_new,
    .tp_init = (initproc)reception_init,
    .tp_traverse = (traverseproc)reception_traverse,
    .tp_clear = (inquiry)reception_clear,
    .tp_dealloc = (destructor)reception_dealloc,
    .tp_methods = reception_methods,
    .tp_members = reception_members,
    .tp_getset = reception_getset,
};


static ReceptionApi api = {
    .type = &ReceptionType,
    .on_packet = reception_on_packet,
    .unwrap_picture = reception_unwrap_picture,
};

static struct PyModuleDef reception_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "confsfu.forwarding._reception",
    .m_doc = "Reception: one incoming media SSRC's receive statistics (sans-IO).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__reception(void) {
    PyObject *counts_module = PyImport_ImportModule("confsfu.bandwidth._counts");
    if (counts_module == NULL)
        return NULL;
    Py_DECREF(counts_module); /* imported: the capsule's path can be followed now */
    if ((counts_api = PyCapsule_Import(COUNTS_API_CAPSULE, 0)) == NULL)
        return NULL;
    if ((ReportType = PyStructSequence_NewType(&report_desc)) == NULL ||
        PyType_Ready(&ReceptionType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&reception_module);
    if (module == NULL)
        return NULL;
    PyObject *capsule = PyCapsule_New(&api, RECEPTION_API_CAPSULE, NULL);
    if (capsule == NULL ||
        PyModule_AddObjectRef(module, "Reception", (PyObject *)&ReceptionType) < 0 ||
        PyModule_AddObjectRef(module, "ReceptionReport", (PyObject *)ReportType) < 0 ||
        PyModule_AddObjectRef(module, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(module);
        return NULL;
    }
    Py_DECREF(capsule);
    return module;
}
