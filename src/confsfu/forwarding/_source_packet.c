/* confsfu.forwarding._slot's reading of its input: a SourcePacket's attributes and a VP8
 * descriptor's offsets into the C structs the forwarders read (_slot.h). Sans-IO. */
#include "_source_packet.h"

static int optional_int(PyObject *value, int *out) {
    if (value == Py_None) {
        *out = -1;
        return 0;
    }
    long v = PyLong_AsLong(value);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || v > 0x7fffffff) {
        PyErr_Format(PyExc_ValueError, "%ld is out of range", v);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static PyObject *s_key, *s_payload, *s_vp8, *s_seq, *s_ext_seq, *s_ext_picture, *s_timestamp,
    *s_marker, *s_keyframe, *s_starts_frame, *s_layer_sync, *s_temporal_id, *s_picture_id,
    *s_tl0picidx, *s_size, *s_picture_id_offset, *s_picture_id_bits, *s_tl0picidx_offset;

/* Read an SourcePacket into `p`, which holds its attributes until packet_release. */
int packet_from(PyObject *inbound, Packet *p) {
    PyObject *names[PACKET_FIELDS] = {
        s_key,        s_payload,    s_vp8,        s_seq,          s_ext_seq,
        s_ext_picture, s_timestamp, s_marker,     s_keyframe,     s_starts_frame,
        s_layer_sync, s_temporal_id, s_picture_id, s_tl0picidx};
    PyObject **v = p->held;
    p->has_descriptor = 0;
    for (p->n_held = 0; p->n_held < PACKET_FIELDS; p->n_held++) {
        v[p->n_held] = PyObject_GetAttr(inbound, names[p->n_held]);
        if (v[p->n_held] == NULL)
            return -1;
    }
    if (v[0] == Py_None || !PyBytes_Check(v[1])) {
        PyErr_SetString(PyExc_TypeError, "an SourcePacket needs a key and bytes for its payload");
        return -1;
    }
    p->key = v[0];
    p->payload = v[1];
    p->vp8 = v[2] == Py_None ? NULL : v[2];
    long seq = PyLong_AsLong(v[3]);
    p->ext_seq = PyLong_AsLongLong(v[4]);
    p->has_ext_picture = v[5] != Py_None;
    p->ext_picture = p->has_ext_picture ? PyLong_AsLongLong(v[5]) : 0;
    p->timestamp = (uint32_t)PyLong_AsUnsignedLongMask(v[6]);
    p->marker = PyObject_IsTrue(v[7]);
    p->keyframe = PyObject_IsTrue(v[8]);
    p->starts_frame = PyObject_IsTrue(v[9]);
    p->layer_sync = PyObject_IsTrue(v[10]);
    if (PyErr_Occurred() || p->marker < 0 || p->keyframe < 0 || p->starts_frame < 0 ||
        p->layer_sync < 0 || optional_int(v[11], &p->temporal_id) < 0 ||
        optional_int(v[12], &p->picture_id) < 0 || optional_int(v[13], &p->tl0picidx) < 0)
        return -1;
    if (seq < 0 || seq > 0xffff) {
        PyErr_SetString(PyExc_ValueError, "a sequence number is 0 to 65535");
        return -1;
    }
    p->seq = (int)seq;
    return 0;
}

void packet_release(Packet *p) {
    for (int i = 0; i < p->n_held; i++)
        Py_DECREF(p->held[i]);
    p->n_held = 0;
}

int descriptor_from(PyObject *vp8, Descriptor *d) {
    PyObject *names[] = {s_size, s_picture_id_offset, s_picture_id_bits, s_tl0picidx_offset};
    int *fields[] = {&d->size, &d->picture_id_offset, &d->picture_id_bits, &d->tl0picidx_offset};
    for (int i = 0; i < 4; i++) {
        PyObject *value = PyObject_GetAttr(vp8, names[i]);
        if (value == NULL)
            return -1;
        long v = PyLong_AsLong(value);
        Py_DECREF(value);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (v < 0 || v > 0xffff) {
            PyErr_SetString(PyExc_ValueError, "bad VP8 descriptor offsets");
            return -1;
        }
        *fields[i] = (int)v;
    }
    return 0;
}

int packet_names_intern(void) {
    struct {
        PyObject **name;
        const char *text;
    } names[] = {
        {&s_key, "key"},
        {&s_payload, "payload"},
        {&s_vp8, "vp8"},
        {&s_seq, "seq"},
        {&s_ext_seq, "ext_seq"},
        {&s_ext_picture, "ext_picture"},
        {&s_timestamp, "timestamp"},
        {&s_marker, "marker"},
        {&s_keyframe, "keyframe"},
        {&s_starts_frame, "starts_frame"},
        {&s_layer_sync, "layer_sync"},
        {&s_temporal_id, "temporal_id"},
        {&s_picture_id, "picture_id"},
        {&s_tl0picidx, "tl0picidx"},
        {&s_size, "size"},
        {&s_picture_id_offset, "picture_id_offset"},
        {&s_picture_id_bits, "picture_id_bits"},
        {&s_tl0picidx_offset, "tl0picidx_offset"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if ((*names[i].name = PyUnicode_InternFromString(names[i].text)) == NULL)
            return -1;
    return 0;
}
