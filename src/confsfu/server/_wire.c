/* confsfu.server._wire: the per-subscriber part of the hot path, in C (this file: the Wire, the
 * send arena and the module).
 *
 * A Route (_route.c) is where one connection's packets go: its SRTP context and its socket (or,
 * for a TURN relay, a Python callable). A Wire is one outgoing stream on a route: `Wire.queue`
 * writes the stream's header (marker, sequence number, timestamp, abs-send-time patched into a
 * template) in front of a shared payload, SRTP-protects it in place in the send arena and keeps
 * it in the stream's history (for NACKs), and `flush` sends everything queued back to back.
 * `fan_out` (_fanout.c) asks each slot's forwarder which packets go out with which numbers; the
 * intake (_intake.c, _tap.c) brings a publisher's packets to it. Everything runs on the event
 * loop's thread, under the GIL.
 */
#include "_route.h"
#include "_seal.h"
#include "_wire.h"

#include <structmember.h>

#include <stdint.h>
#include <string.h>

enum { ARENA_SLOTS = 128 }; /* packets queued before a flush happens by itself */

/* ---- the send arena -------------------------------------------------------------------- */

static unsigned char arena[ARENA_SLOTS][SLOT_BYTES];
static Route *queued_route[ARENA_SLOTS];
static int queued_length[ARENA_SLOTS];
static int queued = 0;

static long failed_sends = 0; /* since the last flush(), including sends of a full arena */
static int sending = 0; /* send_arena runs: a relayed route's sendto (Python) may be running */

/* Send what is queued. A relayed route's sendto may queue more meanwhile (sent too), but the
 * arena is not sent again from within (flush() refuses, a full arena refuses more). */
static void send_arena(void) {
    sending = 1;
    for (int i = 0; i < queued; i++) {
        Route *route = queued_route[i];
        if (route_transmit(route, arena[i], queued_length[i]) != 0)
            failed_sends++;
        queued_route[i] = NULL;
        Py_DECREF(route);
    }
    queued = 0;
    sending = 0;
}

static int flush_asked = 0; /* someone was told to flush since the last flush() */

int wire_flush_wanted(void) {
    if (queued == 0 || flush_asked)
        return 0;
    flush_asked = 1;
    return 1;
}

static PyObject *wire_flush(PyObject *module, PyObject *unused) {
    if (sending) {
        PyErr_SetString(PyExc_RuntimeError, "flush() called from a send of the flush");
        return NULL;
    }
    flush_asked = 0;
    send_arena();
    long failed = failed_sends;
    failed_sends = 0;
    return PyLong_FromLong(failed);
}

static PyObject *wire_pending(PyObject *module, PyObject *unused) {
    return PyLong_FromLong(queued);
}

/* ---- Wire ------------------------------------------------------------------------------ */

static int wire_traverse(Wire *self, visitproc visit, void *arg) {
    Py_VISIT(self->route);
    return 0;
}

static int wire_gc_clear(Wire *self) {
    Py_CLEAR(self->route);
    return 0;
}

static void history_free(Wire *self) {
    if (self->history == NULL)
        return;
    for (uint32_t i = 0; i <= self->history_mask; i++)
        Py_XDECREF(self->history[i].payload);
    PyMem_Free(self->history);
    self->history = NULL;
}

static void wire_dealloc(Wire *self) {
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->route);
    history_free(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int wire_init(Wire *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"route", "header", "abs_send_time_at", "history", NULL};
    PyObject *route;
    Py_buffer header;
    int abs_at = 0;
    int history = 1024;
    if (self->route != NULL) { /* its history and counters belong to the stream it began */
        PyErr_SetString(PyExc_RuntimeError, "a Wire is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!y*|ii", keywords, &RouteType, &route, &header,
                                     &abs_at, &history))
        return -1;
    if (history < 1 || history > (1 << 16) || (history & (history - 1))) {
        PyBuffer_Release(&header);
        PyErr_SetString(PyExc_ValueError, "history must be a power of two up to 65536");
        return -1;
    }
    int ok = header.len >= 12 && header.len <= WIRE_MAX_HEADER && header.len % 4 == 0 &&
             (abs_at == 0 || (abs_at >= 12 && abs_at + 3 <= header.len));
    if (!ok) { /* nothing of the Wire changed */
        PyBuffer_Release(&header);
        PyErr_SetString(PyExc_ValueError,
                        "header must be 12 to 64 bytes in 32-bit words, abs-send-time within it");
        return -1;
    }
    SentPacket *kept = PyMem_Calloc((size_t)history, sizeof(SentPacket));
    if (kept == NULL) {
        PyBuffer_Release(&header);
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < history; i++)
        kept[i].seq = -1;
    memcpy(self->header, header.buf, header.len);
    self->header_len = (int)header.len;
    PyBuffer_Release(&header);
    self->abs_send_time_at = abs_at;
    self->history = kept;
    self->history_mask = (uint32_t)history - 1;
    self->route = (Route *)Py_NewRef(route);
    return 0;
}

static const Patch no_patch = {0};

static void patch_apply(unsigned char *payload, const Patch *patch) {
    uint16_t at = patch->picture_id_offset;
    if (at != 0 && patch->picture_id_bits == 15) {
        payload[at] = (unsigned char)(0x80 | ((patch->picture_id >> 8) & 0x7f));
        payload[at + 1] = (unsigned char)patch->picture_id;
    } else if (at != 0) {
        payload[at] = (unsigned char)(patch->picture_id & 0x7f);
    }
    if (patch->tl0picidx_offset != 0)
        payload[patch->tl0picidx_offset] = patch->tl0picidx;
}

static int patch_fits(const Patch *patch, Py_ssize_t payload_len) {
    int picture_id_end = patch->picture_id_offset + (patch->picture_id_bits == 15 ? 2 : 1);
    return (patch->picture_id_offset == 0 || picture_id_end <= payload_len) &&
           patch->tl0picidx_offset < payload_len;
}

Py_ssize_t wire_put(Wire *self, int marker, uint16_t seq, uint32_t ts,
                    const unsigned char *send_time, PyObject *payload, const Patch *patch) {
    if (self->route == NULL || self->history == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the Wire was never initialised");
        return -1;
    }
    Py_ssize_t payload_len = PyBytes_GET_SIZE(payload);
    Py_ssize_t length = self->header_len + payload_len;
    if (length + SRTP_ROOM + RTX_ROOM > self->route->max_datagram) {
        self->oversized++;
        return -2;
    }
    if (patch == NULL)
        patch = &no_patch;
    else if (!patch_fits(patch, payload_len)) {
        PyErr_SetString(PyExc_ValueError, "the VP8 descriptor does not fit its payload");
        return -1;
    }
    Route *route = self->route;
    if (!route_up(route))
        return 0;
    if (queued == ARENA_SLOTS && sending) {
        PyErr_SetString(PyExc_RuntimeError, "the send arena is full and being sent");
        return -1;
    }
    if (queued == ARENA_SLOTS)
        send_arena();
    unsigned char *out = arena[queued];
    memcpy(out, self->header, self->header_len);
    out[1] = (unsigned char)((out[1] & 0x7f) | (marker ? 0x80 : 0));
    out[2] = (unsigned char)(seq >> 8);
    out[3] = (unsigned char)seq;
    out[4] = (unsigned char)(ts >> 24);
    out[5] = (unsigned char)(ts >> 16);
    out[6] = (unsigned char)(ts >> 8);
    out[7] = (unsigned char)ts;
    static const unsigned char no_send_time[3] = {0};
    if (send_time == NULL)
        send_time = no_send_time;
    if (self->abs_send_time_at)
        memcpy(out + self->abs_send_time_at, send_time, 3);
    memcpy(out + self->header_len, PyBytes_AS_STRING(payload), payload_len);
    patch_apply(out + self->header_len, patch);
    int protected_length = (int)length;
    if (route_protect_rtp(route, out, &protected_length) != 0)
        return 0;
    Py_INCREF(route);
    queued_route[queued] = route;
    queued_length[queued] = protected_length;
    queued++;
    self->packets++;
    self->payload_octets += (unsigned long long)payload_len;
    self->packet_bytes += (unsigned long long)length;
    SentPacket *kept = &self->history[seq & self->history_mask];
    Py_INCREF(payload);
    Py_XSETREF(kept->payload, payload);
    kept->patch = *patch;
    kept->seq = seq;
    kept->transport_seq = route->transport_cc_id ? route->last_transport_seq : -1;
    kept->timestamp = ts;
    kept->marker = (unsigned char)(marker != 0);
    memcpy(kept->send_time, send_time, 3);
    return length;
}

/* queue(marker, sequence_number, timestamp, send_time, payload) -> bytes queued, 0 if not sent
 * (the route down, SRTP refused, or too large) */
static PyObject *wire_queue(Wire *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "queue takes 5 arguments");
        return NULL;
    }
    int marker = PyObject_IsTrue(args[0]);
    unsigned long seq = PyLong_AsUnsignedLongMask(args[1]);
    unsigned long ts = PyLong_AsUnsignedLongMask(args[2]);
    if (marker < 0 || PyErr_Occurred())
        return NULL;
    Py_buffer send_time;
    if (PyObject_GetBuffer(args[3], &send_time, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *payload = PyBytes_FromObject(args[4]); /* bytes stay as they are, shared */
    Py_ssize_t length = -1;
    if (payload != NULL)
        length = wire_put(self, marker, (uint16_t)seq, (uint32_t)ts,
                          send_time.len == 3 ? send_time.buf : NULL, payload, NULL);
    Py_XDECREF(payload);
    PyBuffer_Release(&send_time);
    if (length == -2) /* too large: counted, not sent */
        length = 0;
    return length < 0 ? NULL : PyLong_FromSsize_t(length);
}

/* sent(seq) -> (marker, timestamp, payload, send_time) of packet `seq` if the history still has
 * it */
static PyObject *wire_sent(Wire *self, PyObject *arg) {
    long seq = PyLong_AsLong(arg);
    if (seq == -1 && PyErr_Occurred())
        return NULL;
    if (seq < 0 || seq > 0xffff || self->history == NULL)
        Py_RETURN_NONE;
    SentPacket *kept = &self->history[seq & self->history_mask];
    if (kept->seq != seq || kept->payload == NULL)
        Py_RETURN_NONE;
    PyObject *payload = Py_NewRef(kept->payload);
    if (kept->patch.picture_id_offset != 0 || kept->patch.tl0picidx_offset != 0) {
        Py_SETREF(payload, PyBytes_FromStringAndSize(PyBytes_AS_STRING(payload),
                                                     PyBytes_GET_SIZE(payload)));
        if (payload == NULL)
            return NULL;
        patch_apply((unsigned char *)PyBytes_AS_STRING(payload), &kept->patch);
    }
    return Py_BuildValue("(NkNy#)", PyBool_FromLong(kept->marker),
                         (unsigned long)kept->timestamp, payload, (const char *)kept->send_time,
                         (Py_ssize_t)3);
}

/* transport_seq(seq) -> the transport-wide number packet `seq` went out with, or None */
static PyObject *wire_transport_seq(Wire *self, PyObject *arg) {
    long seq = PyLong_AsLong(arg);
    if (seq == -1 && PyErr_Occurred())
        return NULL;
    if (seq < 0 || seq > 0xffff || self->history == NULL)
        Py_RETURN_NONE;
    SentPacket *kept = &self->history[seq & self->history_mask];
    if (kept->seq != seq || kept->payload == NULL || kept->transport_seq < 0)
        Py_RETURN_NONE;
    return PyLong_FromLong(kept->transport_seq);
}

static PyMethodDef wire_methods[] = {
    {"transport_seq", (PyCFunction)wire_transport_seq, METH_O,
     "transport_seq(seq): the transport-wide sequence number packet `seq` went out with, if"
     " still kept and it carried one (a resend without RTX must carry it again)."},
    {"queue", (PyCFunction)(void (*)(void))wire_queue, METH_FASTCALL,
     "queue(marker, seq, ts, send_time, payload): header + payload, protected, sent by flush()."
     " The packet's length, or 0 when the route is down or SRTP refused it."},
    {"sent", (PyCFunction)wire_sent, METH_O,
     "sent(seq): (marker, timestamp, payload, send_time) of packet `seq` as sent, if still"
     " kept (send_time: the 3-byte abs-send-time it went out with, zeros without one)."},
    {NULL},
};

static PyMemberDef wire_members[] = {
    {"packets", T_ULONGLONG, offsetof(Wire, packets), READONLY, "packets queued"},
    {"payload_octets", T_ULONGLONG, offsetof(Wire, payload_octets), READONLY,
     "payload octets queued"},
    {"packet_bytes", T_ULONGLONG, offsetof(Wire, packet_bytes), READONLY,
     "bytes of the packets queued, before SRTP"},
    {"oversized", T_ULONGLONG, offsetof(Wire, oversized), READONLY,
     "packets not sent: with SRTP (and RTX, resent) they would exceed MAX_DATAGRAM"},
    {NULL},
};

static PyObject *wire_get_route(Wire *self, void *unused) {
    return Py_NewRef(self->route != NULL ? (PyObject *)self->route : Py_None);
}

static PyGetSetDef wire_getset[] = {
    {"route", (getter)wire_get_route, NULL, "the route this stream's packets take", NULL},
    {NULL},
};

PyTypeObject WireType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "confsfu.server._wire.Wire",
    .tp_doc = "One outgoing RTP stream on a route: its header template, counters and history.",
    .tp_basicsize = sizeof(Wire),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)wire_init,
    .tp_dealloc = (destructor)wire_dealloc,
    .tp_traverse = (traverseproc)wire_traverse,
    .tp_clear = (inquiry)wire_gc_clear,
    .tp_methods = wire_methods,
    .tp_members = wire_members,
    .tp_getset = wire_getset,
};

/* ---- module ---------------------------------------------------------------------------- */

static PyMethodDef module_methods[] = {
    {"flush", wire_flush, METH_NOARGS,
     "Send every queued packet; how many queued since the last flush the sockets refused."},
    {"pending", wire_pending, METH_NOARGS, "How many packets are queued."},
    {NULL},
};

static struct PyModuleDef wire_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "confsfu.server._wire",
    .m_doc = "The hot path's IO: the intake from the sockets, fan_out, header patch, SRTP"
             " protect, history and batched send of outgoing RTP.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__wire(void) {
    if (PyType_Ready(&WireType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&wire_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Wire", (PyObject *)&WireType) < 0 ||
        PyModule_AddIntConstant(module, "MAX_PACKET", MAX_PACKET) < 0 ||
        PyModule_AddIntConstant(module, "MAX_DATAGRAM", MAX_DATAGRAM) < 0 ||
        PyModule_AddIntConstant(module, "TRANSPORT_LOG", TRANSPORT_LOG) < 0 ||
        route_add_to(module) < 0 || seal_add_to(module) < 0 || fan_out_add_to(module) < 0 ||
        intake_add_to(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
