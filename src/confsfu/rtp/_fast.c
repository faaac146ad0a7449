/* confsfu.rtp._fast: parse_rtp and parse_vp8 for well-formed packets, in C.
 *
 * The Python parsers (confsfu.rtp.packet, confsfu.codecs.vp8) are the specification: they are
 * registered here with the class they build (configure_rtp / configure_vp8), and anything this
 * code does not take on its fast path (a malformed packet, an input that is not `bytes`) goes to
 * them, so errors and edge cases stay theirs. Objects are built by filling the classes' slots
 * directly, without running their __init__.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <structmember.h>

#include "_scan.h"

#define RTP_FIELDS 10
#define VP8_FIELDS 16

typedef struct {
    PyTypeObject *type;
    PyObject *fallback;
    Py_ssize_t offsets[VP8_FIELDS];
} Builder;

static Builder rtp = {0};
static Builder vp8 = {0};

static const char *rtp_names[RTP_FIELDS] = {
    "data", "marker", "payload_type", "sequence_number", "timestamp",
    "ssrc", "csrcs", "extensions", "payload_start", "payload_end",
};
enum { R_DATA, R_MARKER, R_PT, R_SEQ, R_TS, R_SSRC, R_CSRCS, R_EXT, R_START, R_END };

static const char *vp8_names[VP8_FIELDS] = {
    "size", "start_of_partition", "partition_id", "non_reference", "picture_id",
    "picture_id_bits", "picture_id_offset", "tl0picidx", "tl0picidx_offset", "temporal_id",
    "layer_sync", "key_index", "tid_offset", "is_keyframe", "width", "height",
};
enum {
    V_SIZE, V_SOP, V_PART, V_NONREF, V_PIC, V_PIC_BITS, V_PIC_OFF, V_TL0, V_TL0_OFF, V_TID,
    V_SYNC, V_KEYIDX, V_TID_OFF, V_KEY, V_WIDTH, V_HEIGHT,
};

/* Remember `type` (a class with these __slots__ and no other state) and its fallback parser. */
static PyObject *configure(Builder *b, PyObject *args, const char **names, int count) {
    PyTypeObject *type;
    PyObject *fallback;
    if (!PyArg_ParseTuple(args, "O!O:configure", &PyType_Type, &type, &fallback))
        return NULL;
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "the fallback parser must be callable");
        return NULL;
    }
    Py_ssize_t offsets[VP8_FIELDS];
    for (int i = 0; i < count; i++) {
        PyObject *d = PyObject_GetAttrString((PyObject *)type, names[i]);
        if (d == NULL)
            return NULL;
        /* ... of this class (or a base): another class's slot would be written out of place */
        int ok = Py_IS_TYPE(d, &PyMemberDescr_Type) &&
                 ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX &&
                 PyType_IsSubtype(type, PyDescr_TYPE(d));
        if (ok)
            offsets[i] = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_DECREF(d);
        if (!ok)
            return PyErr_Format(PyExc_TypeError, "%s.%s is not a __slots__ field", type->tp_name,
                                names[i]);
    }
    Py_INCREF(type);
    Py_INCREF(fallback);
    Py_XSETREF(b->type, type);
    Py_XSETREF(b->fallback, fallback);
    memcpy(b->offsets, offsets, sizeof(offsets));
    Py_RETURN_NONE;
}

static PyObject *configure_rtp(PyObject *module, PyObject *args) {
    return configure(&rtp, args, rtp_names, RTP_FIELDS);
}

static PyObject *configure_vp8(PyObject *module, PyObject *args) {
    return configure(&vp8, args, vp8_names, VP8_FIELDS);
}

/* Fill a new instance of the builder's class; steals the references in `values`. */
static PyObject *build(Builder *b, PyObject **values, int count) {
    PyObject *obj = NULL;
    for (int i = 0; i < count; i++)
        if (values[i] == NULL)
            goto fail;
    PyTypeObject *type = (PyTypeObject *)Py_NewRef(b->type);
    obj = type->tp_alloc(type, 0);
    int moved = b->type != type; /* configured anew by a finalizer the allocation ran */
    Py_DECREF(type);
    if (obj == NULL)
        goto fail;
    if (moved) {
        Py_DECREF(obj);
        obj = NULL;
        PyErr_SetString(PyExc_RuntimeError, "confsfu.rtp._fast was configured while parsing");
        goto fail;
    }
    for (int i = 0; i < count; i++)
        *(PyObject **)((char *)obj + b->offsets[i]) = values[i];
    return obj;
fail:
    for (int i = 0; i < count; i++)
        Py_XDECREF(values[i]);
    return NULL;
}

static PyObject *fallback(Builder *b, PyObject *arg) {
    if (b->fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "confsfu.rtp._fast is not configured");
        return NULL;
    }
    return PyObject_CallOneArg(b->fallback, arg);
}

static PyObject *int_or_none(int present, long value) {
    if (!present)
        Py_RETURN_NONE;
    return PyLong_FromLong(value);
}

/* ---- RTP (RFC 3550, RFC 8285 header extensions) -------------------------------------------- */

/* The extension elements of a scanned packet as {id: value}. */
static PyObject *extensions_dict(const unsigned char *d, const RtpScan *h) {
    PyObject *into = PyDict_New();
    Py_ssize_t pos = h->ext_start, at;
    int id, length;
    while (into != NULL &&
           rtp_next_extension(d, &pos, h->ext_end, h->two_byte, &id, &at, &length) == 1) {
        PyObject *key = PyLong_FromLong(id);
        PyObject *value = PyBytes_FromStringAndSize((const char *)d + at, length);
        if (key == NULL || value == NULL || PyDict_SetItem(into, key, value) < 0)
            Py_CLEAR(into);
        Py_XDECREF(key);
        Py_XDECREF(value);
    }
    return into;
}

static PyObject *parse_rtp(PyObject *module, PyObject *data) {
    if (rtp.type == NULL || !PyBytes_CheckExact(data))
        return fallback(&rtp, data);
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(data);
    RtpScan h;
    if (rtp_scan(d, PyBytes_GET_SIZE(data), &h) < 0)
        return fallback(&rtp, data); /* raises the reference parser's ParseError */
    PyObject *values[RTP_FIELDS] = {NULL};
    values[R_CSRCS] = PyTuple_New(h.csrc_count);
    for (int i = 0; values[R_CSRCS] != NULL && i < h.csrc_count; i++) {
        PyObject *csrc = PyLong_FromUnsignedLong(scan_be32(d + 12 + 4 * i));
        if (csrc == NULL)
            Py_CLEAR(values[R_CSRCS]);
        else
            PyTuple_SET_ITEM(values[R_CSRCS], i, csrc);
    }
    Py_INCREF(data);
    values[R_DATA] = data;
    values[R_EXT] = extensions_dict(d, &h);
    values[R_MARKER] = PyBool_FromLong(h.marker);
    values[R_PT] = PyLong_FromLong(h.payload_type);
    values[R_SEQ] = PyLong_FromLong(h.seq);
    values[R_TS] = PyLong_FromUnsignedLong(h.timestamp);
    values[R_SSRC] = PyLong_FromUnsignedLong(h.ssrc);
    values[R_START] = PyLong_FromSsize_t(h.payload_start);
    values[R_END] = PyLong_FromSsize_t(h.payload_end);
    return build(&rtp, values, RTP_FIELDS);
}

/* ---- VP8 payload descriptor (RFC 7741) ------------------------------------------------------ */

static PyObject *parse_vp8(PyObject *module, PyObject *payload) {
    if (vp8.type == NULL || !PyBytes_CheckExact(payload))
        return fallback(&vp8, payload);
    Vp8Scan v;
    if (vp8_scan((const unsigned char *)PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload),
                 &v) < 0)
        return fallback(&vp8, payload);
    PyObject *values[VP8_FIELDS] = {
        [V_SIZE] = PyLong_FromLong(v.size),
        [V_SOP] = PyBool_FromLong(v.start),
        [V_PART] = PyLong_FromLong(v.partition),
        [V_NONREF] = PyBool_FromLong(v.non_reference),
        [V_PIC] = int_or_none(v.has_picture_id, v.picture_id),
        [V_PIC_BITS] = PyLong_FromLong(v.picture_id_bits),
        [V_PIC_OFF] = PyLong_FromLong(v.picture_id_offset),
        [V_TL0] = int_or_none(v.has_tl0picidx, v.tl0picidx),
        [V_TL0_OFF] = PyLong_FromLong(v.tl0picidx_offset),
        [V_TID] = int_or_none(v.has_temporal_id, v.temporal_id),
        [V_SYNC] = PyBool_FromLong(v.layer_sync),
        [V_KEYIDX] = int_or_none(v.has_key_index, v.key_index),
        [V_TID_OFF] = PyLong_FromLong(v.tid_offset),
        [V_KEY] = PyBool_FromLong(v.keyframe),
        [V_WIDTH] = int_or_none(v.has_dimensions, v.width),
        [V_HEIGHT] = int_or_none(v.has_dimensions, v.height),
    };
    return build(&vp8, values, VP8_FIELDS);
}

static PyMethodDef methods[] = {
    {"configure_rtp", configure_rtp, METH_VARARGS,
     "configure_rtp(RtpPacket, parse_rtp_reference): the class to build and the parser for "
     "everything else."},
    {"configure_vp8", configure_vp8, METH_VARARGS,
     "configure_vp8(Vp8Descriptor, parse_vp8_reference): likewise for VP8 descriptors."},
    {"parse_rtp", parse_rtp, METH_O, "parse_rtp(data) -> RtpPacket; ParseError when malformed."},
    {"parse_vp8", parse_vp8, METH_O,
     "parse_vp8(payload) -> Vp8Descriptor; ParseError when malformed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fast_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "confsfu.rtp._fast",
    .m_doc = "parse_rtp and parse_vp8 in C; malformed input goes to the Python reference parsers.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__fast(void) { return PyModule_Create(&fast_module); }
