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
        int ok = Py_IS_TYPE(d, &PyMemberDescr_Type) &&
                 ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX;
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
    obj = b->type->tp_alloc(b->type, 0);
    if (obj == NULL)
        goto fail;
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

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Extension elements into `into`; 0 on success, -1 when malformed (no Python error set), -2 on
 * a Python error. */
static int parse_extensions(PyObject *into, const unsigned char *d, Py_ssize_t pos, Py_ssize_t end,
                            int two_byte) {
    while (pos < end) {
        int id, length;
        if (two_byte) {
            id = d[pos];
            if (id == 0) {
                pos++;
                continue;
            }
            if (pos + 1 >= end)
                return -1;
            length = d[pos + 1];
            pos += 2;
        } else {
            if (d[pos] == 0) {
                pos++;
                continue;
            }
            id = d[pos] >> 4;
            if (id == 15)
                break; /* reserved: stop parsing */
            length = (d[pos] & 0x0f) + 1;
            pos++;
        }
        if (pos + length > end)
            return -1;
        PyObject *key = PyLong_FromLong(id);
        PyObject *value = PyBytes_FromStringAndSize((const char *)d + pos, length);
        int failed = key == NULL || value == NULL || PyDict_SetItem(into, key, value) < 0;
        Py_XDECREF(key);
        Py_XDECREF(value);
        if (failed)
            return -2;
        pos += length;
    }
    return 0;
}

static PyObject *parse_rtp(PyObject *module, PyObject *data) {
    if (rtp.type == NULL || !PyBytes_CheckExact(data))
        return fallback(&rtp, data);
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    if (size < 12 || d[0] >> 6 != 2)
        return fallback(&rtp, data);
    Py_ssize_t pos = 12 + 4 * (d[0] & 0x0f);
    if (pos > size)
        return fallback(&rtp, data);
    PyObject *values[RTP_FIELDS] = {NULL};
    values[R_EXT] = PyDict_New();
    if (values[R_EXT] == NULL)
        return NULL;
    if (d[0] & 0x10) {
        if (pos + 4 > size)
            goto malformed;
        int profile = (d[pos] << 8) | d[pos + 1];
        Py_ssize_t end = pos + 4 + 4 * ((d[pos + 2] << 8) | d[pos + 3]);
        if (end > size)
            goto malformed;
        if (profile == 0xbede || (profile & 0xfff0) == 0x1000) {
            int status = parse_extensions(values[R_EXT], d, pos + 4, end, profile != 0xbede);
            if (status == -1)
                goto malformed;
            if (status == -2) {
                Py_DECREF(values[R_EXT]);
                return NULL;
            }
        }
        pos = end;
    }
    Py_ssize_t payload_end = size;
    if (d[0] & 0x20) {
        int padding = d[size - 1];
        if (padding == 0 || padding > size - pos)
            goto malformed;
        payload_end = size - padding;
    }
    int csrc_count = d[0] & 0x0f;
    values[R_CSRCS] = PyTuple_New(csrc_count);
    for (int i = 0; values[R_CSRCS] != NULL && i < csrc_count; i++) {
        PyObject *csrc = PyLong_FromUnsignedLong(be32(d + 12 + 4 * i));
        if (csrc == NULL)
            Py_CLEAR(values[R_CSRCS]);
        else
            PyTuple_SET_ITEM(values[R_CSRCS], i, csrc);
    }
    Py_INCREF(data);
    values[R_DATA] = data;
    values[R_MARKER] = PyBool_FromLong(d[1] & 0x80);
    values[R_PT] = PyLong_FromLong(d[1] & 0x7f);
    values[R_SEQ] = PyLong_FromLong((d[2] << 8) | d[3]);
    values[R_TS] = PyLong_FromUnsignedLong(be32(d + 4));
    values[R_SSRC] = PyLong_FromUnsignedLong(be32(d + 8));
    values[R_START] = PyLong_FromSsize_t(pos);
    values[R_END] = PyLong_FromSsize_t(payload_end);
    return build(&rtp, values, RTP_FIELDS);
malformed:
    Py_DECREF(values[R_EXT]);
    return fallback(&rtp, data); /* raises the reference parser's ParseError */
}

/* ---- VP8 payload descriptor (RFC 7741) ------------------------------------------------------ */

static PyObject *parse_vp8(PyObject *module, PyObject *payload) {
    if (vp8.type == NULL || !PyBytes_CheckExact(payload))
        return fallback(&vp8, payload);
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(payload);
    Py_ssize_t size = PyBytes_GET_SIZE(payload);
    if (size == 0)
        return fallback(&vp8, payload);
    int b0 = p[0];
    Py_ssize_t pos = 1;
    int has_pic = 0, pic = 0, pic_bits = 0, pic_off = 0;
    int has_tl0 = 0, tl0 = 0, tl0_off = 0;
    int has_tid = 0, tid = 0, sync = 0, has_keyidx = 0, keyidx = 0, tid_off = 0;
    if (b0 & 0x80) {
        if (size < 2)
            return fallback(&vp8, payload);
        int x = p[1];
        pos = 2;
        if (x & 0x80) {
            if (pos >= size)
                return fallback(&vp8, payload);
            pic_off = (int)pos;
            has_pic = 1;
            if (p[pos] & 0x80) {
                if (pos + 1 >= size)
                    return fallback(&vp8, payload);
                pic = ((p[pos] & 0x7f) << 8) | p[pos + 1];
                pic_bits = 15;
                pos += 2;
            } else {
                pic = p[pos];
                pic_bits = 7;
                pos += 1;
            }
        }
        if (x & 0x40) {
            if (pos >= size)
                return fallback(&vp8, payload);
            tl0_off = (int)pos;
            has_tl0 = 1;
            tl0 = p[pos];
            pos += 1;
        }
        if (x & 0x30) {
            if (pos >= size)
                return fallback(&vp8, payload);
            tid_off = (int)pos;
            if (x & 0x20) {
                has_tid = 1;
                tid = p[pos] >> 6;
                sync = (p[pos] & 0x20) != 0;
            }
            if (x & 0x10) {
                has_keyidx = 1;
                keyidx = p[pos] & 0x1f;
            }
            pos += 1;
        }
    }
    if (pos >= size)
        return fallback(&vp8, payload);
    int start = (b0 & 0x10) != 0, partition = b0 & 0x07;
    int key = 0, has_size = 0, width = 0, height = 0;
    if (start && partition == 0 && !(p[pos] & 0x01)) {
        key = 1;
        if (size >= pos + 10 && p[pos + 3] == 0x9d && p[pos + 4] == 0x01 && p[pos + 5] == 0x2a) {
            has_size = 1;
            width = (p[pos + 6] | (p[pos + 7] << 8)) & 0x3fff;
            height = (p[pos + 8] | (p[pos + 9] << 8)) & 0x3fff;
        }
    }
    PyObject *values[VP8_FIELDS] = {
        [V_SIZE] = PyLong_FromSsize_t(pos),
        [V_SOP] = PyBool_FromLong(start),
        [V_PART] = PyLong_FromLong(partition),
        [V_NONREF] = PyBool_FromLong(b0 & 0x20),
        [V_PIC] = int_or_none(has_pic, pic),
        [V_PIC_BITS] = PyLong_FromLong(pic_bits),
        [V_PIC_OFF] = PyLong_FromLong(pic_off),
        [V_TL0] = int_or_none(has_tl0, tl0),
        [V_TL0_OFF] = PyLong_FromLong(tl0_off),
        [V_TID] = int_or_none(has_tid, tid),
        [V_SYNC] = PyBool_FromLong(sync),
        [V_KEYIDX] = int_or_none(has_keyidx, keyidx),
        [V_TID_OFF] = PyLong_FromLong(tid_off),
        [V_KEY] = PyBool_FromLong(key),
        [V_WIDTH] = int_or_none(has_size, width),
        [V_HEIGHT] = int_or_none(has_size, height),
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
