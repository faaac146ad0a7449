/* confsfu.server._wire.Intake as Python sees it: construction, the tracks and repairs it
 * takes, its counters, its keys and its Taps. The packet path is _intake.c. */
#include "_intake_type.h"
#include "_seal.h"

#include <structmember.h>

#include <stddef.h>
#include <string.h>

static PyObject *intake_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Intake *self = (Intake *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->gate_audio = self->gate_video = 1;
        self->max_packet = SEAL_MAX_PACKET;
        self->level_floor = 128; /* every level reported */
    }
    return (PyObject *)self;
}

static int intake_init(Intake *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"pid",           "fan_outs",       "slow",       "on_level",
                            "on_keyframe",   "after_fan_out",  "schedule_flush", "max_packet",
                            NULL};
    PyObject *pid, *fan_outs, *call[K_COUNT];
    int max_packet = SEAL_MAX_PACKET;
    if (self->pid != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "an Intake is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "UO!OOOOO|$i", names, &pid, &PyDict_Type,
                                     &fan_outs, &call[0], &call[1], &call[2], &call[3], &call[4],
                                     &max_packet))
        return -1;
    for (int i = 0; i < K_COUNT; i++)
        if (!PyCallable_Check(call[i])) {
            PyErr_Format(PyExc_TypeError, "%s must be callable", intake_callable_names[i]);
            return -1;
        }
    if (max_packet < 12 || max_packet > SEAL_MAX_PACKET) {
        PyErr_Format(PyExc_ValueError, "max_packet is 12 to %d", SEAL_MAX_PACKET);
        return -1;
    }
    self->pid = Py_NewRef(pid);
    self->fan_outs = Py_NewRef(fan_outs);
    for (int i = 0; i < K_COUNT; i++)
        self->call[i] = Py_NewRef(call[i]);
    self->max_packet = max_packet;
    return 0;
}

static int intake_traverse(Intake *self, visitproc visit, void *arg) {
    for (int i = 0; i < K_COUNT; i++)
        Py_VISIT(self->call[i]);
    Py_VISIT(self->fan_outs);
    Py_VISIT(self->on_gap);
    Py_VISIT(self->relay);
    Py_VISIT(self->opener);
    Py_VISIT(self->srtp_owner);
    for (int i = 0; i < self->n_tracks; i++)
        Py_VISIT(self->tracks[i]);
    for (int i = 0; i < self->n_repairs; i++)
        Py_VISIT(self->repairs[i].media);
    return 0;
}

static int intake_clear(Intake *self) {
    for (int i = 0; i < K_COUNT; i++)
        Py_CLEAR(self->call[i]);
    Py_CLEAR(self->fan_outs);
    Py_CLEAR(self->on_gap);
    Py_CLEAR(self->relay);
    Py_CLEAR(self->opener);
    Py_CLEAR(self->srtp_owner);
    self->srtp = NULL;
    Py_CLEAR(self->pid);
    for (; self->n_tracks > 0; self->n_tracks--)
        Py_CLEAR(self->tracks[self->n_tracks - 1]);
    for (; self->n_repairs > 0; self->n_repairs--)
        Py_CLEAR(self->repairs[self->n_repairs - 1].media);
    return 0;
}

static void intake_dealloc(Intake *self) {
    PyObject_GC_UnTrack(self);
    intake_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *intake_add(Intake *self, PyObject *arg) {
    if (!PyObject_TypeCheck(arg, intake_reception_api->type)) {
        PyErr_SetString(PyExc_TypeError, "add() takes a Reception");
        return NULL;
    }
    Reception *track = (Reception *)arg;
    if (!track->initialised) {
        PyErr_SetString(PyExc_RuntimeError, "the Reception was never initialised");
        return NULL;
    }
    for (int i = 0; i < self->n_tracks; i++)
        if (self->tracks[i]->ssrc == track->ssrc) {
            Py_SETREF(self->tracks[i], (Reception *)Py_NewRef(arg));
            Py_RETURN_TRUE;
        }
    if (self->n_tracks == MAX_TRACKS)
        Py_RETURN_FALSE; /* its packets keep going the slow way */
    self->tracks[self->n_tracks++] = (Reception *)Py_NewRef(arg);
    Py_RETURN_TRUE;
}

static PyObject *intake_holds(Intake *self, PyObject *arg) {
    unsigned long ssrc = PyLong_AsUnsignedLong(arg);
    if (ssrc == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    return PyBool_FromLong(ssrc <= 0xffffffffUL && (intake_track(self, (uint32_t)ssrc) != NULL ||
                                                    intake_repair(self, (uint32_t)ssrc) != NULL));
}

static PyObject *intake_add_repair(Intake *self, PyObject *args) {
    unsigned int ssrc;
    int payload_type;
    PyObject *media;
    if (!PyArg_ParseTuple(args, "IiO!", &ssrc, &payload_type, intake_reception_api->type, &media))
        return NULL;
    if (!((Reception *)media)->initialised) {
        PyErr_SetString(PyExc_RuntimeError, "the Reception was never initialised");
        return NULL;
    }
    if (payload_type < 0 || payload_type > 127) {
        PyErr_SetString(PyExc_ValueError, "a payload type is 0 to 127");
        return NULL;
    }
    Repair *r = intake_repair(self, ssrc);
    if (r == NULL) {
        if (self->n_repairs == MAX_TRACKS)
            Py_RETURN_FALSE; /* its packets keep going the slow way */
        r = &self->repairs[self->n_repairs++];
        r->media = NULL;
    }
    r->ssrc = ssrc;
    r->payload_type = payload_type;
    Py_XSETREF(r->media, (Reception *)Py_NewRef(media));
    Py_RETURN_TRUE;
}

/* remove(ssrc): the track of that SSRC, and the repair streams of it, or a repair stream of
 * that SSRC, are no longer taken here. */
static PyObject *intake_remove(Intake *self, PyObject *arg) {
    unsigned long ssrc = PyLong_AsUnsignedLong(arg);
    if (ssrc == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    Reception *gone = NULL;
    for (int i = 0; i < self->n_tracks; i++)
        if (self->tracks[i]->ssrc == ssrc) {
            gone = self->tracks[i];
            self->tracks[i] = self->tracks[--self->n_tracks];
            break;
        }
    for (int i = 0; i < self->n_repairs;) {
        Repair *r = &self->repairs[i];
        if (r->ssrc == ssrc || (gone != NULL && r->media == gone)) {
            Reception *media = r->media;
            *r = self->repairs[--self->n_repairs];
            Py_XDECREF(media);
        } else {
            i++;
        }
    }
    Py_XDECREF(gone); /* a packet being taken holds its own reference */
    Py_RETURN_NONE;
}

/* {name: count} of counts[first:end], each set back to 0. */
static PyObject *take_range(Intake *self, int first, int end) {
    PyObject *counts = PyDict_New();
    for (int i = first; counts != NULL && i < end; i++) {
        if (self->counts[i] == 0)
            continue;
        PyObject *n = PyLong_FromUnsignedLongLong(self->counts[i]);
        if (n == NULL || PyDict_SetItemString(counts, intake_count_names[i], n) < 0)
            Py_CLEAR(counts);
        else
            self->counts[i] = 0;
        Py_XDECREF(n);
    }
    return counts;
}

static PyObject *intake_take_counts(Intake *self, PyObject *unused) {
    PyObject *counters = take_range(self, 0, C_DUPLICATE);
    PyObject *drops = counters != NULL ? take_range(self, C_DUPLICATE, C_COUNT) : NULL;
    if (drops == NULL) {
        Py_XDECREF(counters);
        return NULL;
    }
    return Py_BuildValue("(NN)", counters, drops);
}

static PyObject *intake_receive_py(Intake *self, PyObject *args) {
    Py_buffer clear;
    long long now_ms;
    if (!intake_ready(self)) {
        PyErr_SetString(PyExc_RuntimeError, "the Intake was never initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*L", &clear, &now_ms))
        return NULL;
    PyObject *result = clear.len > SEAL_MAX_PACKET  /* Python refuses it */
                           ? call_slow(self, clear.buf, (int)clear.len, now_ms)
                           : intake_receive(self, clear.buf, (int)clear.len, now_ms);
    PyBuffer_Release(&clear);
    return result;
}

static PyObject *intake_set_srtp(Intake *self, PyObject *args) {
    PyObject *address, *owner;
    if (!PyArg_ParseTuple(args, "OO", &address, &owner))
        return NULL;
    void *srtp = NULL;
    if (address != Py_None) {
        srtp = PyLong_AsVoidPtr(address);
        if (srtp == NULL && PyErr_Occurred())
            return NULL;
    }
    if (srtp != self->srtp)
        self->n_srtp_ssrcs = 0; /* another session: none of its streams exist yet */
    self->srtp = srtp;
    Py_XSETREF(self->srtp_owner, srtp != NULL ? Py_NewRef(owner) : NULL);
    Py_RETURN_NONE;
}

static PyObject *intake_get_opener(Intake *self, void *unused) {
    return Py_NewRef(self->opener != NULL ? self->opener : Py_None);
}

static int intake_set_opener(Intake *self, PyObject *value, void *unused) {
    if (value != NULL && value != Py_None && !PyObject_TypeCheck(value, &OpenerType)) {
        PyErr_SetString(PyExc_TypeError, "the opener is an Opener or None");
        return -1;
    }
    if (value != NULL && value != Py_None && !opener_ready((Opener *)value)) {
        PyErr_SetString(PyExc_RuntimeError, "the Opener was never initialised");
        return -1;
    }
    Py_XSETREF(self->opener, value == NULL || value == Py_None ? NULL : Py_NewRef(value));
    return 0;
}

static PyObject *intake_tap(Intake *self, PyObject *fallback) {
    if (!intake_ready(self)) {
        PyErr_SetString(PyExc_RuntimeError, "the Intake was never initialised");
        return NULL;
    }
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "the fallback must be callable");
        return NULL;
    }
    return tap_new(self, fallback);
}

static PyMethodDef intake_methods[] = {
    {"tap", (PyCFunction)intake_tap, METH_O,
     "tap(fallback) -> a socket protocol's datagram_received(data, addr): SRTP the intake can "
     "open goes to it, everything else to fallback(data, addr)."},
    {"add", (PyCFunction)intake_add, METH_O,
     "add(track): take the packets of its SSRC from now on (replacing a track of the same "
     "SSRC); False when the intake holds as many as it can."},
    {"remove", (PyCFunction)intake_remove, METH_O,
     "remove(ssrc): stop taking the track of that SSRC (and its repair streams), or the repair "
     "stream of that SSRC."},
    {"holds", (PyCFunction)intake_holds, METH_O,
     "holds(ssrc): a track or repair stream of that SSRC was added."},
    {"add_repair", (PyCFunction)intake_add_repair, METH_VARARGS,
     "add_repair(ssrc, payload_type, media): RTX of that SSRC and payload type repairs the "
     "track `media` from now on; False when the intake holds as many as it can."},
    {"set_srtp", (PyCFunction)intake_set_srtp, METH_VARARGS,
     "set_srtp(context, owner): libsrtp's receiving context (its address; None: none) opens "
     "the RTP an `opener` does not; `owner` keeps it alive."},
    {"take_counts", (PyCFunction)intake_take_counts, METH_NOARGS,
     "take_counts() -> ({name: count}, {reason: count}): counters and drops of the packets "
     "taken since the last call."},
    {"receive", (PyCFunction)intake_receive_py, METH_VARARGS,
     "receive(clear, now_ms): one decrypted RTP packet, as if the socket had read it."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef intake_members[] = {
    {"level_id", T_INT, offsetof(Intake, level_id), 0, "the audio-level extension's id, or 0"},
    {"voice_frame_bytes", T_INT, offsetof(Intake, voice_frame_bytes), 0,
     "packets without a level are judged by size: bytes per Opus frame for sound (0: off)"},
    {"voice_dbov", T_INT, offsetof(Intake, voice_dbov), 0,
     "the level reported for a packet judged to hold sound"},
    {"level_floor", T_INT, offsetof(Intake, level_floor), 0,
     "audio levels (-dBov) at or above it go unreported unless the voice flag is set"},
    {"gate_audio", T_BOOL, offsetof(Intake, gate_audio), 0, "audio may be forwarded"},
    {"gate_video", T_BOOL, offsetof(Intake, gate_video), 0, "video may be forwarded"},
    {"pid", T_OBJECT_EX, offsetof(Intake, pid), READONLY, NULL},
    {"on_gap", T_OBJECT, offsetof(Intake, on_gap), 0,
     "on_gap(now_ms): a packet left a gap behind it, so NACKs will be due (None: nobody asks)"},
    {"relay", T_OBJECT, offsetof(Intake, relay), 0,
     "dict: layer key -> relay(packet): the clear RTP packet of each taken packet of that layer"
     " (RTX unwrapped), before the fan-out (None: no layer is relayed)"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef intake_getset[] = {
    {"opener", (getter)intake_get_opener, (setter)intake_set_opener,
     "what opens the connection's SRTP (None: everything goes to `fallback`)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject IntakeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "confsfu.server._wire.Intake",
    .tp_doc = "Intake(pid, fan_outs, slow, on_level, on_keyframe, after_fan_out, "
              "schedule_flush, *, max_packet): a publish connection's RTP straight to fan_out.",
    .tp_basicsize = sizeof(Intake),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = intake_new,
    .tp_init = (initproc)intake_init,
    .tp_traverse = (traverseproc)intake_traverse,
    .tp_clear = (inquiry)intake_clear,
    .tp_dealloc = (destructor)intake_dealloc,
    .tp_methods = intake_methods,
    .tp_members = intake_members,
    .tp_getset = intake_getset,
};


int intake_add_to(PyObject *module) {
    const char *modules[] = {"confsfu.bandwidth._counts", "confsfu.forwarding._reception"};
    for (int i = 0; i < 2; i++) { /* imported: the capsules' paths can be followed now */
        PyObject *imported = PyImport_ImportModule(modules[i]);
        if (imported == NULL)
            return -1;
        Py_DECREF(imported);
    }
    if ((intake_counts_api = PyCapsule_Import(COUNTS_API_CAPSULE, 0)) == NULL ||
        (intake_reception_api = PyCapsule_Import(RECEPTION_API_CAPSULE, 0)) == NULL)
        return -1;
    if (PyType_Ready(&IntakeType) < 0 || tap_add_to(module) < 0 ||
        PyModule_AddObjectRef(module, "Intake", (PyObject *)&IntakeType) < 0)
        return -1;
    return 0;
}
