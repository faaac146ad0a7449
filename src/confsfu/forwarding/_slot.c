/* confsfu.forwarding._slot: one slot's forwarder, which packets of which source it forwards
 * and with which numbers. Sans-IO: time comes in as an argument. confsfu._wire's fan_out runs
 * it for every slot through the C API in _slot.h.
 *
 * A slot's outgoing sequence numbers, timestamps, VP8 picture ids and TL0PICIDX are the
 * source's plus offsets that change only at a source switch or where a temporal layer is
 * dropped, so retransmissions and reordering keep their place. A video slot switches to a new
 * source (or simulcast layer) on its next keyframe and keeps forwarding the old one until then.
 * Temporal layers above `max_temporal` are dropped: going down at any frame start, going up at
 * a TL0 frame or a layer-sync frame; a paused slot (max_temporal -1) resumes on a keyframe.
 * Outgoing sequence numbers of new packets only go forward: every one is new (SRTP must never
 * protect two packets with one index), whatever the source's numbers do.
 */
#include "_slot.h"
#include "_offsets.h"
#include "_source_packet.h"

#include <structmember.h>

#define SEQ_MASK 0xffffLL
#define TS_MASK 0xffffffffLL
#define PICTURE_ID_MASK 0x7fffLL
#define TL0_MASK 0xffLL
/* A source's sequence number further than this from the newest one forwarded (a restart, a
 * new SSRC, a jump carried by packets that were not forwarded) rebases the slot's numbering:
 * it goes on from the last number sent, so no outgoing number is ever used twice. */
#define MAX_SEQ_GAP 4096

/* ---- SlotForwarder ----------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *source;  /* the layer key forwarded now, or NULL */
    PyObject *pending; /* the layer key to switch to on its next keyframe, or NULL */
    long long pending_since_ms;
    long long switch_after_ms; /* no switch before this (the page must hear of it first) */
    int is_video;
    int clock_rate;
    int max_temporal; /* the highest temporal layer wanted (the allocator's target) */
    int temporal;     /* the highest temporal layer being forwarded now; -1: paused */
    int started;
    int rewrites_descriptor; /* picture id / TL0PICIDX offsets are not zero */
    int initialised; /* __init__ ran (it may not run twice: numbers would be reused) */
    unsigned long long dropped_temporal;
    unsigned long long rebased; /* jumps in the source's numbering the slot stepped over */
    long long newest_in;
    long long ts_offset;
    long long tl0_offset;
    long long last_seq, last_ts, last_picture_id, last_tl0picidx; /* the last values sent */
    long long last_out_ms;
    long long switched_ts; /* the outgoing timestamp of the current source's first packet */
    OffsetMap seq_map;
    OffsetMap pic_map;
} Forwarder;

static PyTypeObject ForwarderType;

/* Keys are interned values (confsfu.ids.LayerKey, one object per value), compared by identity;
 * a str key (tests) is compared by value. */
static int same_key(PyObject *a, PyObject *b) {
    if (a == b)
        return 1;
    if (a == NULL || b == NULL || !PyUnicode_CheckExact(a) || !PyUnicode_CheckExact(b) ||
        (PyUnicode_CHECK_INTERNED(a) && PyUnicode_CHECK_INTERNED(b)))
        return 0;
    return PyUnicode_Compare(a, b) == 0;
}

static void update_rewrites(Forwarder *f) {
    f->rewrites_descriptor = (offsets_latest(&f->pic_map) & PICTURE_ID_MASK) || f->tl0_offset;
}

static void forwarder_switch(Forwarder *f, long long now_ms, const Packet *p) {
    long long first_ts, first_pic, first_tl0;
    if (f->started) {
        long long elapsed_ticks = (now_ms - f->last_out_ms) * f->clock_rate / 1000;
        first_ts = f->last_ts + (elapsed_ticks > 1 ? elapsed_ticks : 1);
        first_pic = f->last_picture_id + 1;
        first_tl0 = f->last_tl0picidx + 1;
    } else {
        first_ts = f->last_ts;
        first_pic = p->picture_id >= 0 ? p->picture_id : 0;
        first_tl0 = p->tl0picidx >= 0 ? p->tl0picidx : 0;
        /* Seed the last sent values: one half a range from 0 would never count as newer. */
        f->last_picture_id = first_pic;
        f->last_tl0picidx = first_tl0;
    }
    offsets_reset(&f->seq_map, p->ext_seq, (f->last_seq + 1 - p->seq) & SEQ_MASK);
    f->newest_in = p->ext_seq - 1;
    f->ts_offset = (first_ts - (long long)p->timestamp) & TS_MASK;
    /* Offsets apply to the unwrapped picture id, which is picture_id plus a multiple of 2**15:
     * the same offset modulo 2**15. */
    if (p->has_ext_picture)
        offsets_reset(&f->pic_map, p->ext_picture, (first_pic - p->ext_picture) & PICTURE_ID_MASK);
    else
        offsets_reset(&f->pic_map, 0, 0);
    if (p->tl0picidx >= 0)
        f->tl0_offset = (first_tl0 - p->tl0picidx) & TL0_MASK;
    f->switched_ts = first_ts & TS_MASK;
    f->temporal = f->max_temporal; /* a keyframe is on TL0: any target can start here */
    Py_XSETREF(f->source, f->pending);
    f->pending = NULL;
    f->started = 1;
    update_rewrites(f);
}

static void follow_temporal_target(Forwarder *f, const Packet *p, int tid) {
    int target = f->max_temporal;
    int going_down = target < f->temporal;
    /* Paused, the decoder has lost its references: resume on a keyframe only. */
    int paused = f->temporal < 0;
    int can_go_up = paused ? p->keyframe : (tid == 0 || (p->layer_sync && tid <= target));
    if (going_down || (target > f->temporal && can_go_up))
        f->temporal = target;
}

/* Close the gap a dropped packet leaves in the sequence (and its frame's picture id). */
static void forwarder_drop(Forwarder *f, int newest, const Packet *p) {
    f->dropped_temporal++;
    if (!newest)
        return;
    f->newest_in = p->ext_seq;
    offsets_shift_from(&f->seq_map, p->ext_seq + 1, -1);
    if (p->starts_frame && p->has_ext_picture) {
        offsets_shift_from(&f->pic_map, p->ext_picture + 1, -1);
        update_rewrites(f);
    }
}

/* 1 and the numbers to send `p` with, or 0 to drop it. */
static int forwarder_decide(Forwarder *f, long long now_ms, const Packet *p, Numbers *out) {
    if (!same_key(p->key, f->source)) {
        if (!same_key(p->key, f->pending))
            return 0;
        /* A video slot switches on a keyframe it forwards: never while paused, so that its
         * source is always whoever it last sent a picture of. */
        if (f->is_video && (!p->keyframe || f->max_temporal < 0 || now_ms < f->switch_after_ms))
            return 0;
        forwarder_switch(f, now_ms, p);
    }
    long long ext = p->ext_seq;
    if (ext - f->newest_in > MAX_SEQ_GAP || f->newest_in - ext > MAX_SEQ_GAP) {
        offsets_reset(&f->seq_map, ext, (f->last_seq + 1 - p->seq) & SEQ_MASK);
        f->newest_in = ext - 1;
        f->rebased++;
    }
    int newest = ext > f->newest_in;
    if (f->is_video) {
        /* A packet without a temporal layer id counts as the base layer: a pause stops it too. */
        int tid = p->temporal_id >= 0 ? p->temporal_id : 0;
        if (newest && p->starts_frame)
            follow_temporal_target(f, p, tid);
        if (tid > f->temporal) {
            forwarder_drop(f, newest, p);
            return 0;
        }
    }
    int known;
    long long offset = offsets_get(&f->seq_map, ext, &known);
    if (!known)
        return 0; /* from before the switch: its place belongs to the previous source */
    out->seq = (uint16_t)((p->seq + offset) & SEQ_MASK);
    out->ts = (uint32_t)(((long long)p->timestamp + f->ts_offset) & TS_MASK);
    if (newest) {
        f->newest_in = ext;
        f->last_seq = out->seq;
        f->last_ts = out->ts;
        f->last_out_ms = now_ms;
    }
    out->picture_id = out->tl0picidx = -1;
    if (p->has_ext_picture) {
        long long pic_offset = offsets_get(&f->pic_map, p->ext_picture, &known);
        out->picture_id = (int)((p->ext_picture + pic_offset) & PICTURE_ID_MASK);
        if (newest)
            f->last_picture_id = out->picture_id;
    }
    if (p->tl0picidx >= 0) {
        out->tl0picidx = (int)((p->tl0picidx + f->tl0_offset) & TL0_MASK);
        if (newest)
            f->last_tl0picidx = out->tl0picidx;
    }
    return 1;
}

static void forwarder_reset(Forwarder *f, int is_video, int clock_rate, long long initial_seq,
                            long long initial_ts) {
    Py_CLEAR(f->source);
    Py_CLEAR(f->pending);
    f->is_video = is_video;
    f->clock_rate = clock_rate;
    f->pending_since_ms = 0;
    f->switch_after_ms = 0;
    f->max_temporal = f->temporal = 2;
    f->started = 0;
    f->dropped_temporal = 0;
    f->rebased = 0;
    offsets_reset(&f->seq_map, 0, 0);
    offsets_reset(&f->pic_map, 0, 0);
    f->rewrites_descriptor = 0;
    f->newest_in = -1;
    f->ts_offset = f->tl0_offset = 0;
    /* The "next" is last + 1; the caller seeds them randomly. */
    f->last_seq = (initial_seq - 1) & SEQ_MASK;
    f->last_ts = initial_ts & TS_MASK;
    f->last_picture_id = f->last_tl0picidx = 0;
    f->last_out_ms = 0;
    f->switched_ts = 0;
}

/* A usable forwarder (video, 90 kHz, numbers from 0) even if __init__ is never called. */
static PyObject *forwarder_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Forwarder *f = (Forwarder *)type->tp_alloc(type, 0);
    if (f != NULL)
        forwarder_reset(f, 1, 90000, 0, 0);
    return (PyObject *)f;
}

static int forwarder_init(Forwarder *f, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"is_video", "clock_rate", "initial_seq", "initial_ts", NULL};
    int is_video, clock_rate;
    long long initial_seq, initial_ts;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "$piLL", keywords, &is_video, &clock_rate,
                                     &initial_seq, &initial_ts))
        return -1;
    if (clock_rate <= 0) {
        PyErr_SetString(PyExc_ValueError, "clock_rate must be positive");
        return -1;
    }
    if (f->initialised) {
        PyErr_SetString(PyExc_RuntimeError, "a SlotForwarder is initialised once");
        return -1;
    }
    forwarder_reset(f, is_video, clock_rate, initial_seq, initial_ts);
    f->initialised = 1;
    return 0;
}

static void forwarder_dealloc(Forwarder *f) {
    Py_CLEAR(f->source);
    Py_CLEAR(f->pending);
    Py_TYPE(f)->tp_free((PyObject *)f);
}

static int key_arg(PyObject *value, PyObject **out) {
    if (value == Py_None) {
        *out = NULL;
        return 0;
    }
    Py_INCREF(value);
    if (PyUnicode_CheckExact(value))
        PyUnicode_InternInPlace(&value);
    *out = value; /* a new reference */
    return 0;
}

/* assign(now_ms, source): the room wants this slot to carry `source`; True when a keyframe is
 * now needed. */
static PyObject *forwarder_assign(Forwarder *f, PyObject *args) {
    long long now_ms;
    PyObject *arg, *source;
    if (!PyArg_ParseTuple(args, "LO", &now_ms, &arg) || key_arg(arg, &source) < 0)
        return NULL;
    if (same_key(source, f->source)) {
        Py_XDECREF(source);
        Py_CLEAR(f->pending);
        Py_RETURN_FALSE;
    }
    if (source == NULL || !f->is_video) {
        /* Audio switches at the next packet; an emptied slot stops at once. */
        Py_XSETREF(f->pending, source);
        if (source == NULL)
            Py_CLEAR(f->source);
        Py_RETURN_FALSE;
    }
    if (!same_key(source, f->pending)) {
        Py_XSETREF(f->pending, source);
        f->pending_since_ms = now_ms;
    } else {
        Py_DECREF(source);
    }
    Py_RETURN_TRUE;
}

/* restart(now_ms): the source's stream starts anew (its publisher reconnected, with new
 * numbers): take it up again like a switch, on its next keyframe. True when a keyframe is now
 * needed. */
static PyObject *forwarder_restart(Forwarder *f, PyObject *arg) {
    long long now_ms = PyLong_AsLongLong(arg);
    if (now_ms == -1 && PyErr_Occurred())
        return NULL;
    if (f->source == NULL)
        Py_RETURN_FALSE;
    if (f->pending == NULL) {
        f->pending = f->source;
        f->source = NULL;
        f->pending_since_ms = now_ms;
    } else {
        Py_CLEAR(f->source);
    }
    return PyBool_FromLong(f->is_video);
}

static PyObject *optional(int value) {
    if (value < 0)
        Py_RETURN_NONE;
    return PyLong_FromLong(value);
}

/* forward(now_ms, inbound) -> (seq, timestamp, picture id, TL0PICIDX) to send it with, or None */
static PyObject *forwarder_forward(Forwarder *f, PyObject *args) {
    long long now_ms;
    PyObject *inbound;
    if (!PyArg_ParseTuple(args, "LO", &now_ms, &inbound))
        return NULL;
    Packet p;
    Numbers n;
    PyObject *result = NULL;
    if (packet_from(inbound, &p) == 0) {
        if (forwarder_decide(f, now_ms, &p, &n))
            result = Py_BuildValue("(kkNN)", (unsigned long)n.seq, (unsigned long)n.ts,
                                   optional(n.picture_id), optional(n.tl0picidx));
        else
            result = Py_NewRef(Py_None);
    }
    packet_release(&p);
    return result;
}

static PyObject *forwarder_translate_timestamp(Forwarder *f, PyObject *arg) {
    unsigned long long ts = PyLong_AsUnsignedLongLongMask(arg);
    if (PyErr_Occurred())
        return NULL;
    return PyLong_FromLongLong(((long long)(ts & TS_MASK) + f->ts_offset) & TS_MASK);
}

static PyObject *key_or_none(PyObject *key) { return Py_NewRef(key != NULL ? key : Py_None); }

static PyObject *get_source(Forwarder *f, void *unused) { return key_or_none(f->source); }
static PyObject *get_pending(Forwarder *f, void *unused) { return key_or_none(f->pending); }

static PyObject *get_waiting_for_keyframe(Forwarder *f, void *unused) {
    if (f->max_temporal < 0 && f->is_video)
        Py_RETURN_NONE; /* paused: no keyframe is wanted until it resumes */
    if (f->pending != NULL)
        return Py_NewRef(f->pending);
    if (f->source != NULL && f->temporal < 0 && f->max_temporal >= 0)
        return Py_NewRef(f->source);
    Py_RETURN_NONE;
}

static PyObject *get_max_temporal(Forwarder *f, void *unused) {
    return PyLong_FromLong(f->max_temporal);
}

static int set_max_temporal(Forwarder *f, PyObject *value, void *unused) {
    long v = value != NULL ? PyLong_AsLong(value) : -2;
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < -1 || v > 7) {
        PyErr_SetString(PyExc_ValueError, "max_temporal is -1 (paused) to 7");
        return -1;
    }
    f->max_temporal = (int)v;
    return 0;
}

static PyObject *get_bool(Forwarder *f, void *offset) {
    return PyBool_FromLong(*(int *)((char *)f + (size_t)offset));
}

static PyMethodDef forwarder_methods[] = {
    {"assign", (PyCFunction)forwarder_assign, METH_VARARGS,
     "assign(now_ms, source): carry `source` (a layer key or None); True when a keyframe is now"
     " needed."},
    {"restart", (PyCFunction)forwarder_restart, METH_O,
     "restart(now_ms): the source restarts with new numbers; True when a keyframe is now needed."},
    {"forward", (PyCFunction)forwarder_forward, METH_VARARGS,
     "forward(now_ms, inbound): (seq, timestamp, picture id, TL0PICIDX) to send it with, or None"
     " to drop it."},
    {"translate_timestamp", (PyCFunction)forwarder_translate_timestamp, METH_O,
     "A source RTP timestamp as this slot's stream shows it (for Sender Reports)."},
    {NULL},
};

static PyMemberDef forwarder_members[] = {
    {"clock_rate", T_INT, offsetof(Forwarder, clock_rate), READONLY, NULL},
    {"pending_since_ms", T_LONGLONG, offsetof(Forwarder, pending_since_ms), READONLY,
     "when the pending switch was asked for"},
    {"switch_after_ms", T_LONGLONG, offsetof(Forwarder, switch_after_ms), 0,
     "a pending switch waits for a keyframe at or after this time"},
    {"temporal", T_INT, offsetof(Forwarder, temporal), READONLY,
     "the highest temporal layer forwarded now"},
    {"dropped_temporal", T_ULONGLONG, offsetof(Forwarder, dropped_temporal), READONLY,
     "packets dropped above the temporal target"},
    {"rebased", T_ULONGLONG, offsetof(Forwarder, rebased), READONLY,
     "jumps in the source's numbering that the slot's numbering stepped over"},
    {"last_seq", T_LONGLONG, offsetof(Forwarder, last_seq), READONLY, NULL},
    {"last_ts", T_LONGLONG, offsetof(Forwarder, last_ts), READONLY, NULL},
    {"last_picture_id", T_LONGLONG, offsetof(Forwarder, last_picture_id), READONLY, NULL},
    {"last_tl0picidx", T_LONGLONG, offsetof(Forwarder, last_tl0picidx), READONLY, NULL},
    {"switched_ts", T_LONGLONG, offsetof(Forwarder, switched_ts), READONLY,
     "the outgoing RTP timestamp of the first packet of the source carried now"},
    {NULL},
};

static PyGetSetDef forwarder_getset[] = {
    {"source", (getter)get_source, NULL, "the layer key forwarded now", NULL},
    {"pending", (getter)get_pending, NULL, "the layer key switched to on its next keyframe", NULL},
    {"waiting_for_keyframe", (getter)get_waiting_for_keyframe, NULL,
     "the key whose keyframe this slot waits for (a switch, or resuming from a pause)", NULL},
    {"max_temporal", (getter)get_max_temporal, (setter)set_max_temporal,
     "the highest temporal layer wanted; -1 pauses the slot", NULL},
    {"is_video", (getter)get_bool, NULL, NULL, (void *)offsetof(Forwarder, is_video)},
    {"rewrites_descriptor", (getter)get_bool, NULL,
     "whether picture id / TL0PICIDX offsets are not zero",
     (void *)offsetof(Forwarder, rewrites_descriptor)},
    {NULL},
};

static PyTypeObject ForwarderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "confsfu.forwarding._slot.SlotForwarder",
    .tp_doc = "Keeps a slot's outgoing stream continuous while the source it carries changes.",
    .tp_basicsize = sizeof(Forwarder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = forwarder_new,
    .tp_init = (initproc)forwarder_init,
    .tp_dealloc = (destructor)forwarder_dealloc,
    .tp_methods = forwarder_methods,
    .tp_members = forwarder_members,
    .tp_getset = forwarder_getset,
};

/* ---- the C API -------------------------------------------------------------------------- */

static int decide(PyObject *forwarder, long long now_ms, const Packet *p, Numbers *out) {
    Forwarder *f = (Forwarder *)forwarder;
    PyObject *before = f->source; /* compared by identity only: no reference needed */
    int flags = forwarder_decide(f, now_ms, p, out) ? DECIDE_FORWARD : 0;
    if (f->source != before)
        flags |= DECIDE_SWITCHED;
    if (f->rewrites_descriptor && (p->vp8 != NULL || p->has_descriptor))
        flags |= DECIDE_REWRITE;
    return flags;
}

static SlotApi api = {
    .forwarder_type = &ForwarderType,
    .packet_from = packet_from,
    .packet_release = packet_release,
    .decide = decide,
    .descriptor_from = descriptor_from,
};

static struct PyModuleDef slot_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "confsfu.forwarding._slot",
    .m_doc = "One slot's forwarder: which packets of which source it forwards, with which numbers.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__slot(void) {
    if (packet_names_intern() < 0)
        return NULL;
    if (PyType_Ready(&ForwarderType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&slot_module);
    if (module == NULL)
        return NULL;
    PyObject *capsule = PyCapsule_New(&api, SLOT_API_CAPSULE, NULL);
    if (capsule == NULL ||
        PyModule_AddObjectRef(module, "SlotForwarder", (PyObject *)&ForwarderType) < 0 ||
        PyModule_AddObject(module, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
