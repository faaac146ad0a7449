/* confsfu._wire: the per-subscriber part of the hot path, in C (this file: the bytes).
 *
 * A Route is where one connection's packets go: its SRTP context and its socket (or, for a TURN
 * relay, a Python callable). A Wire is one outgoing stream on a route: `Wire.queue` writes the
 * stream's header (marker, sequence number, timestamp, abs-send-time patched into a template)
 * in front of a shared payload, SRTP-protects it in place in the send arena and keeps it in the
 * stream's history (for NACKs), and `flush` sends everything queued back to back. `fan_out`
 * (_fanout.c) asks each slot's forwarder which packets go out with which numbers. Everything
 * runs on the event loop's thread, under the GIL.
 */
#include "_wire.h"
#include "_seal.h"

#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* libsrtp's srtp_(un)protect(_rtcp) (pylibsrtp's copy, handed over by set_protect). */
typedef int (*protect_fn)(void *ctx, void *packet, int *length);
static protect_fn protect_rtp = NULL;
static protect_fn protect_rtcp = NULL;
static protect_fn unprotect_rtp = NULL;
static protect_fn unprotect_rtcp = NULL;

enum {
    SLOT_BYTES = 2048,
    TRAILER_BYTES = 148, /* SRTP_MAX_SRTCP_TRAILER_LEN: tag, MKI and SRTCP index */
    MAX_PACKET = SLOT_BYTES - TRAILER_BYTES,
    ARENA_SLOTS = 128, /* packets queued before a flush happens by itself */
    ROUTE_STREAMS = 128, /* outgoing SSRCs a route can give an SRTP context of their own */
};

/* ---- Route ----------------------------------------------------------------------------- */

struct Route {
    PyObject_HEAD
    void *srtp;       /* srtp_t of the connection's sending side; NULL while there is no route */
    PyObject *owner;  /* keeps `srtp` alive (the pylibsrtp Session) */
    int fd;           /* our own dup of the ICE socket, or -1 */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    PyObject *sendto; /* a relayed route: sendto(data, addr) in Python */
    PyObject *py_addr;
    unsigned long long srtp_errors;
    unsigned long long send_errors;
    /* SSRCs whose RTP has a protection of its own: a Sealer, or a libsrtp context (libsrtp
     * finds a stream by walking a linked list of the session's streams, once per packet). They
     * belong to the connection's keys, not to its path, so they outlive route_reset. */
    int streams, sealed;
    struct {
        uint32_t ssrc; /* as on the wire */
        void *srtp;
        Sealer *sealer; /* or NULL: libsrtp's `srtp` */
        uint64_t index; /* the sealer's highest packet index of this SSRC */
    } stream[ROUTE_STREAMS];
    PyObject *stream_owners; /* a list keeping their Sealers or pylibsrtp Sessions alive */
};

/* Protect the RTP packet in place, with its SSRC's own protection or the route's context;
 * 0 on success, else counted in srtp_errors. */
static int route_protect_rtp(Route *self, unsigned char *packet, int *length) {
    void *srtp = self->srtp;
    if (*length >= 12) {
        uint32_t ssrc;
        memcpy(&ssrc, packet + 8, 4);
        for (int i = 0; i < self->streams; i++)
            if (self->stream[i].ssrc == ssrc) {
                if (self->stream[i].sealer != NULL) {
                    if (sealer_seal(self->stream[i].sealer, &self->stream[i].index, packet,
                                    length) == 0)
                        return 0;
                    self->srtp_errors++;
                    return -1;
                }
                srtp = self->stream[i].srtp;
                break;
            }
    }
    if (protect_rtp(srtp, packet, length) == 0)
        return 0;
    self->srtp_errors++;
    return -1;
}

static void route_reset(Route *self) {
    self->srtp = NULL;
    if (self->fd >= 0) {
        close(self->fd);
        self->fd = -1;
    }
    Py_CLEAR(self->owner);
    Py_CLEAR(self->sendto);
    Py_CLEAR(self->py_addr);
}

static int route_traverse(Route *self, visitproc visit, void *arg) {
    Py_VISIT(self->stream_owners);
    Py_VISIT(self->owner);
    Py_VISIT(self->sendto);
    Py_VISIT(self->py_addr);
    return 0;
}

static void route_forget_streams(Route *self) {
    self->streams = self->sealed = 0;
    Py_CLEAR(self->stream_owners);
}

static int route_gc_clear(Route *self) {
    route_reset(self);
    route_forget_streams(self);
    return 0;
}

static void route_dealloc(Route *self) {
    PyObject_GC_UnTrack(self);
    route_reset(self);
    route_forget_streams(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *route_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Route *self = (Route *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->fd = -1;
    return (PyObject *)self;
}

static void *srtp_from(PyObject *address) {
    void *srtp = PyLong_AsVoidPtr(address);
    if (srtp == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "the SRTP context is NULL");
    return srtp;
}

static PyObject *route_over_socket(Route *self, PyObject *args) {
    PyObject *srtp_address, *owner;
    int fd, port;
    const char *host;
    if (!PyArg_ParseTuple(args, "OOisi", &srtp_address, &owner, &fd, &host, &port))
        return NULL;
    void *srtp = srtp_from(srtp_address);
    if (srtp == NULL)
        return NULL;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    memset(&addr, 0, sizeof addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    if (port < 0 || port > 65535) {
        PyErr_Format(PyExc_ValueError, "bad port %d", port);
        return NULL;
    }
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        addr_len = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        addr_len = sizeof *v6;
    } else {
        PyErr_Format(PyExc_ValueError, "not an IP address: %s", host);
        return NULL;
    }
    /* Our own descriptor: the ICE agent closing its socket cannot leave us sending on a number
     * that the kernel has since given to another socket. */
    int own = dup(fd);
    if (own < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    route_reset(self);
    self->srtp = srtp;
    Py_INCREF(owner);
    self->owner = owner;
    self->fd = own;
    self->addr = addr;
    self->addr_len = addr_len;
    Py_RETURN_NONE;
}

static PyObject *route_over_callable(Route *self, PyObject *args) {
    PyObject *srtp_address, *owner, *sendto, *addr;
    if (!PyArg_ParseTuple(args, "OOOO", &srtp_address, &owner, &sendto, &addr))
        return NULL;
    if (!PyCallable_Check(sendto)) {
        PyErr_SetString(PyExc_TypeError, "sendto must be callable");
        return NULL;
    }
    void *srtp = srtp_from(srtp_address);
    if (srtp == NULL)
        return NULL;
    route_reset(self);
    self->srtp = srtp;
    Py_INCREF(owner);
    self->owner = owner;
    Py_INCREF(sendto);
    self->sendto = sendto;
    Py_INCREF(addr);
    self->py_addr = addr;
    Py_RETURN_NONE;
}

/* Give RTP of `ssrc` its own protection: `sealer`, or else libsrtp context `srtp`. */
static PyObject *route_add_stream(Route *self, unsigned int ssrc, void *srtp, Sealer *sealer,
                                  PyObject *owner) {
    uint32_t wire_ssrc = htonl((uint32_t)ssrc);
    for (int i = 0; i < self->streams; i++)
        if (self->stream[i].ssrc == wire_ssrc) {
            PyErr_Format(PyExc_ValueError, "SSRC %u already has a context", ssrc);
            return NULL;
        }
    if (self->streams == ROUTE_STREAMS) {
        PyErr_Format(PyExc_ValueError, "a route gives at most %d SSRCs a context",
                     ROUTE_STREAMS);
        return NULL;
    }
    if (self->stream_owners == NULL && (self->stream_owners = PyList_New(0)) == NULL)
        return NULL;
    if (PyList_Append(self->stream_owners, owner) < 0)
        return NULL;
    self->stream[self->streams].ssrc = wire_ssrc;
    self->stream[self->streams].srtp = srtp;
    self->stream[self->streams].sealer = sealer;
    self->stream[self->streams].index = 0;
    self->streams++;
    self->sealed += sealer != NULL;
    Py_RETURN_NONE;
}

static PyObject *route_dedicate(Route *self, PyObject *args) {
    PyObject *srtp_address, *owner;
    unsigned int ssrc;
    if (!PyArg_ParseTuple(args, "IOO", &ssrc, &srtp_address, &owner))
        return NULL;
    void *srtp = srtp_from(srtp_address);
    if (srtp == NULL)
        return NULL;
    return route_add_stream(self, ssrc, srtp, NULL, owner);
}

static PyObject *route_seal(Route *self, PyObject *args) {
    PyObject *sealer;
    unsigned int ssrc;
    if (!PyArg_ParseTuple(args, "IO!", &ssrc, &SealerType, &sealer))
        return NULL;
    return route_add_stream(self, ssrc, NULL, (Sealer *)sealer, sealer);
}

static PyObject *route_clear(Route *self, PyObject *unused) {
    route_reset(self);
    Py_RETURN_NONE;
}

/* Send one protected datagram on the route now; 0 on success. */
static int route_transmit(Route *self, const unsigned char *data, int length) {
    if (self->fd >= 0) {
        for (;;) {
            ssize_t n = sendto(self->fd, data, (size_t)length, 0, (struct sockaddr *)&self->addr,
                               self->addr_len);
            if (n >= 0)
                return 0;
            if (errno != EINTR)
                break;
        }
    } else if (self->sendto != NULL) {
        PyObject *bytes = PyBytes_FromStringAndSize((const char *)data, length);
        PyObject *result = NULL;
        if (bytes != NULL) {
            result = PyObject_CallFunctionObjArgs(self->sendto, bytes, self->py_addr, NULL);
            Py_DECREF(bytes);
        }
        if (result != NULL) {
            Py_DECREF(result);
            return 0;
        }
        PyErr_Clear(); /* a lost datagram, counted: the other sends go on */
    }
    self->send_errors++;
    return -1;
}

static unsigned char scratch[SLOT_BYTES];

static PyObject *route_send(Route *self, PyObject *args) {
    Py_buffer packet;
    int rtcp = 0;
    if (!PyArg_ParseTuple(args, "y*|p", &packet, &rtcp))
        return NULL;
    if (packet.len > MAX_PACKET) {
        PyErr_Format(PyExc_ValueError, "a %zd-byte packet exceeds %d bytes", packet.len,
                     MAX_PACKET);
        PyBuffer_Release(&packet);
        return NULL;
    }
    int length = (int)packet.len;
    memcpy(scratch, packet.buf, packet.len);
    PyBuffer_Release(&packet);
    if (self->srtp == NULL || protect_rtp == NULL)
        Py_RETURN_FALSE;
    if (rtcp && protect_rtcp(self->srtp, scratch, &length) != 0) {
        self->srtp_errors++;
        Py_RETURN_FALSE;
    }
    if (!rtcp && route_protect_rtp(self, scratch, &length) != 0)
        Py_RETURN_FALSE;
    return PyBool_FromLong(route_transmit(self, scratch, length) == 0);
}

static PyObject *route_ready(Route *self, void *unused) {
    return PyBool_FromLong(self->srtp != NULL);
}

static PyMethodDef route_methods[] = {
    {"over_socket", (PyCFunction)route_over_socket, METH_VARARGS,
     "over_socket(srtp, owner, fd, host, port): send on a dup of socket `fd` to host:port."},
    {"over_callable", (PyCFunction)route_over_callable, METH_VARARGS,
     "over_callable(srtp, owner, sendto, addr): send through sendto(data, addr)."},
    {"clear", (PyCFunction)route_clear, METH_NOARGS, "No route: nothing is sent."},
    {"dedicate", (PyCFunction)route_dedicate, METH_VARARGS,
     "dedicate(ssrc, srtp, owner): RTP of `ssrc` is protected with context `srtp` (kept alive"
     " by `owner`) instead of the route's, from now on and whatever path the route takes."},
    {"seal", (PyCFunction)route_seal, METH_VARARGS,
     "seal(ssrc, sealer): RTP of `ssrc` is protected by `sealer` (a Sealer, which may serve"
     " other SSRCs too), like dedicate."},
    {"send", (PyCFunction)route_send, METH_VARARGS,
     "send(packet, rtcp=False): protect and send one packet now; False if not sent."},
    {NULL},
};

static PyMemberDef route_members[] = {
    {"srtp_errors", T_ULONGLONG, offsetof(Route, srtp_errors), READONLY,
     "packets SRTP (libsrtp or a Sealer) refused to protect"},
    {"send_errors", T_ULONGLONG, offsetof(Route, send_errors), READONLY,
     "protected packets the socket did not take"},
    {"dedicated", T_INT, offsetof(Route, streams), READONLY,
     "SSRCs whose RTP has an SRTP context (or a Sealer) of its own"},
    {"sealed", T_INT, offsetof(Route, sealed), READONLY, "... of which by a Sealer"},
    {NULL},
};

static PyGetSetDef route_getset[] = {
    {"ready", (getter)route_ready, NULL, "whether packets can be sent", NULL},
    {NULL},
};

static PyTypeObject RouteType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "confsfu._wire.Route",
    .tp_doc = "Where one connection's packets go: its SRTP context and socket.",
    .tp_basicsize = sizeof(Route),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = route_new,
    .tp_dealloc = (destructor)route_dealloc,
    .tp_traverse = (traverseproc)route_traverse,
    .tp_clear = (inquiry)route_gc_clear,
    .tp_methods = route_methods,
    .tp_members = route_members,
    .tp_getset = route_getset,
};

/* ---- the send arena -------------------------------------------------------------------- */

static unsigned char arena[ARENA_SLOTS][SLOT_BYTES];
static Route *queued_route[ARENA_SLOTS];
static int queued_length[ARENA_SLOTS];
static int queued = 0;

static long failed_sends = 0; /* since the last flush(), including sends of a full arena */

static void send_arena(void) {
    for (int i = 0; i < queued; i++) {
        Route *route = queued_route[i];
        if (route_transmit(route, arena[i], queued_length[i]) != 0)
            failed_sends++;
        queued_route[i] = NULL;
        Py_DECREF(route);
    }
    queued = 0;
}

static int flush_asked = 0; /* someone was told to flush since the last flush() */

int wire_flush_wanted(void) {
    if (queued == 0 || flush_asked)
        return 0;
    flush_asked = 1;
    return 1;
}

static PyObject *wire_flush(PyObject *module, PyObject *unused) {
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
    if (ok)
        memcpy(self->header, header.buf, header.len);
    self->header_len = (int)header.len;
    PyBuffer_Release(&header);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError,
                        "header must be 12 to 64 bytes in 32-bit words, abs-send-time within it");
        return -1;
    }
    self->abs_send_time_at = abs_at;
    history_free(self);
    self->history = PyMem_Calloc((size_t)history, sizeof(SentPacket));
    if (self->history == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->history_mask = (uint32_t)history - 1;
    for (int i = 0; i < history; i++)
        self->history[i].seq = -1;
    Py_INCREF(route);
    Py_XSETREF(self->route, (Route *)route);
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
    if (length > MAX_PACKET) {
        PyErr_Format(PyExc_ValueError, "a %zd-byte packet exceeds %d bytes", length, MAX_PACKET);
        return -1;
    }
    if (patch == NULL)
        patch = &no_patch;
    else if (!patch_fits(patch, payload_len)) {
        PyErr_SetString(PyExc_ValueError, "the VP8 descriptor does not fit its payload");
        return -1;
    }
    Route *route = self->route;
    if (route->srtp == NULL || protect_rtp == NULL)
        return 0;
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
    kept->timestamp = ts;
    kept->marker = (unsigned char)(marker != 0);
    memcpy(kept->send_time, send_time, 3);
    return length;
}

/* queue(marker, sequence_number, timestamp, send_time, payload) -> bytes queued, 0 if not sent */
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

static PyMethodDef wire_methods[] = {
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
    .tp_name = "confsfu._wire.Wire",
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

static PyObject *wire_set_protect(PyObject *module, PyObject *args) {
    PyObject *addresses[4];
    protect_fn fns[4];
    if (!PyArg_ParseTuple(args, "OOOO", &addresses[0], &addresses[1], &addresses[2],
                          &addresses[3]))
        return NULL;
    for (int i = 0; i < 4; i++) {
        fns[i] = (protect_fn)PyLong_AsVoidPtr(addresses[i]);
        if (fns[i] == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "NULL libsrtp function");
            return NULL;
        }
    }
    protect_rtp = fns[0];
    protect_rtcp = fns[1];
    unprotect_rtp = fns[2];
    unprotect_rtcp = fns[3];
    Py_RETURN_NONE;
}

/* One incoming packet, decrypted in a buffer of our own: the clear bytes, or None when libsrtp
 * refuses it (bad tag, replayed, too old) or it is too long to handle. */
static PyObject *wire_unprotect(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    static unsigned char inbox[SLOT_BYTES];
    if (nargs != 3 || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "unprotect(srtp: int, data: bytes, rtcp: bool)");
        return NULL;
    }
    if (unprotect_rtp == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "set_protect() was not called");
        return NULL;
    }
    void *srtp = srtp_from(args[0]);
    int rtcp = PyObject_IsTrue(args[2]);
    if (srtp == NULL || rtcp < 0)
        return NULL;
    Py_ssize_t size = PyBytes_GET_SIZE(args[1]);
    if (size > MAX_PACKET)
        Py_RETURN_NONE;
    memcpy(inbox, PyBytes_AS_STRING(args[1]), size);
    int length = (int)size;
    if ((rtcp ? unprotect_rtcp : unprotect_rtp)(srtp, inbox, &length) != 0)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)inbox, length);
}

int wire_unprotect_rtp(void *srtp, unsigned char *packet, int *length) {
    return unprotect_rtp != NULL && unprotect_rtp(srtp, packet, length) == 0 ? 0 : -1;
}

static PyObject *wire_sealing_available(PyObject *module, PyObject *unused) {
    return PyBool_FromLong(seal_available());
}

static PyMethodDef module_methods[] = {
    {"sealing_available", wire_sealing_available, METH_NOARGS,
     "Whether OpenSSL's libcrypto could be loaded, so that Sealers and Openers can be made."},
    {"set_protect", wire_set_protect, METH_VARARGS,
     "set_protect(protect_rtp, protect_rtcp, unprotect_rtp, unprotect_rtcp): addresses of "
     "libsrtp's srtp_protect, srtp_protect_rtcp, srtp_unprotect and srtp_unprotect_rtcp."},
    {"unprotect", (PyCFunction)(void (*)(void))wire_unprotect, METH_FASTCALL,
     "unprotect(srtp, data, rtcp) -> the clear packet, or None when libsrtp refuses it."},
    {"flush", wire_flush, METH_NOARGS,
     "Send every queued packet; how many queued since the last flush the sockets refused."},
    {"pending", wire_pending, METH_NOARGS, "How many packets are queued."},
    {NULL},
};

static struct PyModuleDef wire_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "confsfu._wire",
    .m_doc = "The per-subscriber hot path: fan_out, header patch, SRTP protect, history and"
             " batched send of outgoing RTP.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__wire(void) {
    if (PyType_Ready(&RouteType) < 0 || PyType_Ready(&WireType) < 0 ||
        PyType_Ready(&SealerType) < 0 || PyType_Ready(&OpenerType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&wire_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Route", (PyObject *)&RouteType) < 0 ||
        PyModule_AddObjectRef(module, "Wire", (PyObject *)&WireType) < 0 ||
        PyModule_AddObjectRef(module, "Sealer", (PyObject *)&SealerType) < 0 ||
        PyModule_AddObjectRef(module, "Opener", (PyObject *)&OpenerType) < 0 ||
        PyModule_AddIntConstant(module, "MAX_PACKET", MAX_PACKET) < 0 ||
        fan_out_add_to(module) < 0 || intake_add_to(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
