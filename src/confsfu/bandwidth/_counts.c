/* confsfu.bandwidth._counts: LayerCounts, the bytes of each (spatial, temporal) layer of one
 * video source in a ring of time buckets, and their rates over the window (sans-IO). The intake
 * (confsfu._wire) counts every packet here through the C API below, without Python;
 * confsfu.bandwidth.layer_meter.LayerBitrateMeter reads the rates and states the rule (tests
 * hold the rates to it written out plainly).
 */
#include "_counts.h"

#include <limits.h>
#include <stddef.h>

enum { LAYERS = SPATIAL_LAYERS * TEMPORAL_LAYERS, LAYER_RESTART_MS = 300 };

struct LayerCounts {
    PyObject_HEAD
    long long bucket_ms;
    int n;                /* buckets in the window */
    long long *bytes;     /* n * LAYERS, bucket-major */
    long long *epochs;    /* the absolute bucket number each ring slot holds, -1: none */
    int has_first;
    long long first_bucket, latest_bucket;
};

static long long floor_div(long long a, long long b) {
    long long q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static long long floor_mod(long long a, long long b) { return a - floor_div(a, b) * b; }

static int layer_counts_add(LayerCounts *self, long long now_ms, int spatial, int temporal,
                     long long size) {
    if (self->bytes == NULL)
        return -1;
    if (spatial < 0 || spatial >= SPATIAL_LAYERS || temporal < 0 || temporal >= TEMPORAL_LAYERS ||
        size < 0)
        return -1;
    long long bucket = floor_div(now_ms, self->bucket_ms);
    if (bucket <= self->latest_bucket - self->n)
        return 0; /* older than the window */
    int slot = (int)floor_mod(bucket, self->n);
    long long *chunk = self->bytes + (size_t)slot * LAYERS;
    if (self->epochs[slot] != bucket) {
        if (self->epochs[slot] > bucket)
            return 0; /* the slot already holds a newer bucket */
        memset(chunk, 0, LAYERS * sizeof *chunk);
        self->epochs[slot] = bucket;
    }
    chunk[spatial * TEMPORAL_LAYERS + temporal] += size;
    if (bucket > self->latest_bucket)
        self->latest_bucket = bucket;
    if (!self->has_first || bucket < self->first_bucket) {
        self->has_first = 1;
        self->first_bucket = bucket;
    }
    return 0;
}

/* Bits per second of each layer (s * 3 + t) over the window ending at `now_ms`. A layer that
 * sent nothing in the stream's first buckets of the window (switched back on) is measured from
 * its own start, and one that sent nothing in the window's last buckets (switched off) up to its
 * own end, so that neither reads cheaper than it is while the window fills or empties; any rate
 * over at least half a window, so a first keyframe is not a rate. */
static void layer_counts_rates(const LayerCounts *self, long long now_ms, double *rates) {
    for (int k = 0; k < LAYERS; k++)
        rates[k] = 0.0;
    if (!self->has_first)
        return;
    long long now_bucket = floor_div(now_ms, self->bucket_ms);
    long long oldest = now_bucket - self->n + 1;
    long long start = oldest > self->first_bucket ? oldest : self->first_bucket;
    long long restart = start + floor_div(LAYER_RESTART_MS + self->bucket_ms - 1, self->bucket_ms);
    long long stop = now_bucket - floor_div(LAYER_RESTART_MS + self->bucket_ms - 1, self->bucket_ms);
    long long totals[LAYERS] = {0}, early[LAYERS] = {0}, late[LAYERS] = {0}, since[LAYERS];
    long long until[LAYERS];
    int live = 0;
    for (int k = 0; k < LAYERS; k++) {
        since[k] = LLONG_MAX;
        until[k] = LLONG_MIN;
    }
    for (int slot = 0; slot < self->n; slot++) {
        long long epoch = self->epochs[slot];
        if (epoch < oldest || epoch > now_bucket)
            continue;
        live = 1;
        const long long *chunk = self->bytes + (size_t)slot * LAYERS;
        for (int k = 0; k < LAYERS; k++) {
            totals[k] += chunk[k];
            if (epoch < restart)
                early[k] += chunk[k];
            if (epoch > stop)
                late[k] += chunk[k];
            if (chunk[k] && epoch < since[k])
                since[k] = epoch;
            if (chunk[k] && epoch > until[k])
                until[k] = epoch;
        }
    }
    if (!live)
        return;
    long long least_ms = self->bucket_ms * (self->n / 2 > 1 ? self->n / 2 : 1);
    for (int k = 0; k < LAYERS; k++) {
        long long from_ms = start * self->bucket_ms, to_ms = now_ms;
        if (totals[k] && !early[k])
            from_ms = since[k] * self->bucket_ms;
        if (totals[k] && !late[k])
            to_ms = (until[k] + 1) * self->bucket_ms;
        long long own = to_ms - from_ms, floor_ms = least_ms;
        if (totals[k] && !late[k] && early[k] && now_ms - start * self->bucket_ms >= least_ms)
            floor_ms = self->bucket_ms; /* there all along, then stopped: its span is exact */
        rates[k] = (double)totals[k] * 8000.0 / (double)(own > floor_ms ? own : floor_ms);
    }
}

static int counts_init(LayerCounts *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"window_ms", "bucket_ms", NULL};
    long long window_ms, bucket_ms;
    if (self->bytes != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "LayerCounts are initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "LL", names, &window_ms, &bucket_ms))
        return -1;
    if (bucket_ms <= 0 || window_ms < bucket_ms || window_ms % bucket_ms ||
        window_ms / bucket_ms > 10000) {
        PyErr_SetString(PyExc_ValueError,
                        "window_ms must be a positive multiple of bucket_ms (at most 10,000)");
        return -1;
    }
    self->bucket_ms = bucket_ms;
    self->n = (int)(window_ms / bucket_ms);
    self->bytes = PyMem_Calloc((size_t)self->n * LAYERS, sizeof *self->bytes);
    self->epochs = PyMem_Malloc((size_t)self->n * sizeof *self->epochs);
    if (self->bytes == NULL || self->epochs == NULL) { /* left as never initialised */
        PyMem_Free(self->bytes);
        PyMem_Free(self->epochs);
        self->bytes = NULL;
        self->epochs = NULL;
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < self->n; i++)
        self->epochs[i] = -1;
    self->has_first = 0;
    self->latest_bucket = -1;
    return 0;
}

static void counts_dealloc(LayerCounts *self) {
    PyMem_Free(self->bytes);
    PyMem_Free(self->epochs);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *counts_add_py(LayerCounts *self, PyObject *args) {
    long long now_ms, size;
    int spatial, temporal;
    if (!PyArg_ParseTuple(args, "LiiL", &now_ms, &spatial, &temporal, &size))
        return NULL;
    if (self->bytes == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "LayerCounts were never initialised");
        return NULL;
    }
    if (layer_counts_add(self, now_ms, spatial, temporal, size) < 0)
        return PyErr_Format(PyExc_ValueError, "no layer (%d, %d) of %lld bytes", spatial,
                            temporal, size);
    Py_RETURN_NONE;
}

static PyObject *counts_rates(LayerCounts *self, PyObject *arg) {
    long long now_ms = PyLong_AsLongLong(arg);
    if (now_ms == -1 && PyErr_Occurred())
        return NULL;
    if (self->bytes == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "LayerCounts were never initialised");
        return NULL;
    }
    double rates[LAYERS];
    layer_counts_rates(self, now_ms, rates);
    PyObject *list = PyList_New(LAYERS);
    for (int k = 0; list != NULL && k < LAYERS; k++) {
        PyObject *rate = PyFloat_FromDouble(rates[k]);
        if (rate == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, k, rate);
    }
    return list;
}

static PyObject *counts_state(LayerCounts *self, PyObject *unused) {
    if (self->bytes == NULL)
        Py_RETURN_NONE;
    PyObject *epochs = PyList_New(self->n), *bytes = PyList_New((Py_ssize_t)self->n * LAYERS);
    for (int i = 0; epochs != NULL && i < self->n; i++)
        PyList_SET_ITEM(epochs, i, PyLong_FromLongLong(self->epochs[i]));
    for (int i = 0; bytes != NULL && i < self->n * LAYERS; i++)
        PyList_SET_ITEM(bytes, i, PyLong_FromLongLong(self->bytes[i]));
    PyObject *first = self->has_first ? PyLong_FromLongLong(self->first_bucket) : Py_NewRef(Py_None);
    return Py_BuildValue("(LiNNN)", self->bucket_ms, self->n, first, epochs, bytes);
}

static PyMethodDef counts_methods[] = {
    {"add", (PyCFunction)counts_add_py, METH_VARARGS,
     "add(now_ms, spatial, temporal, size_bytes): count one packet of that layer."},
    {"rates", (PyCFunction)counts_rates, METH_O,
     "rates(now_ms) -> 9 rates in bit/s, layer (s, t) at s * 3 + t, over the window."},
    {"state", (PyCFunction)counts_state, METH_NOARGS,
     "state() -> (bucket_ms, buckets, first bucket or None, epochs, bytes): for tests."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LayerCountsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "confsfu.bandwidth._counts.LayerCounts",
    .tp_doc = "LayerCounts(window_ms, bucket_ms): bytes per simulcast layer in time buckets.",
    .tp_basicsize = sizeof(LayerCounts),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)counts_init,
    .tp_dealloc = (destructor)counts_dealloc,
    .tp_methods = counts_methods,
};

static CountsApi api = {.type = &LayerCountsType, .add = layer_counts_add};

static struct PyModuleDef counts_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "confsfu.bandwidth._counts",
    .m_doc = "LayerCounts: bytes per simulcast layer in time buckets, and their rates.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__counts(void) {
    if (PyType_Ready(&LayerCountsType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&counts_module);
    if (module == NULL)
        return NULL;
    PyObject *capsule = PyCapsule_New(&api, COUNTS_API_CAPSULE, NULL);
    if (capsule == NULL || PyModule_AddObjectRef(module, "LayerCounts", (PyObject *)&LayerCountsType) < 0 ||
        PyModule_AddObjectRef(module, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(module);
        return NULL;
    }
    Py_DECREF(capsule);
    return module;
}
