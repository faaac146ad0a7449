/* confsfu.server._wire's Route: where one connection's packets go, its SRTP context and its
 * socket (or, for a TURN relay, a Python callable), and libsrtp's protect and unprotect, which
 * pylibsrtp hands over (set_protect).
 */
#include "_route.h"

#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

protect_fn protect_rtp = NULL;
protect_fn protect_rtcp = NULL;
protect_fn unprotect_rtp = NULL;
protect_fn unprotect_rtcp = NULL;

/* ---- Route ----------------------------------------------------------------------------- */

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
    for (int i = 0; i < self->streams; i++)
        sent_free(&self->stream[i].sent);
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
    PyMem_Free(self->transport_log);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *route_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Route *self = (Route *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->fd = -1;
        self->max_datagram = MAX_DATAGRAM;
        self->last_transport_seq = -1;
    }
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
    memset(&self->stream[self->streams].sent, 0, sizeof self->stream[self->streams].sent);
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
    if (!sealer_ready((Sealer *)sealer)) {
        PyErr_SetString(PyExc_RuntimeError, "the Sealer was never initialised");
        return NULL;
    }
    return route_add_stream(self, ssrc, NULL, (Sealer *)sealer, sealer);
}

static PyObject *route_clear(Route *self, PyObject *unused) {
    route_reset(self);
    Py_RETURN_NONE;
}

int route_transmit(Route *self, const unsigned char *data, int length) {
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
        if (bytes != NULL) { /* held: sendto may clear the route (or set another) */
            PyObject *sendto = Py_NewRef(self->sendto), *addr = Py_NewRef(self->py_addr);
            result = PyObject_CallFunctionObjArgs(sendto, bytes, addr, NULL);
            Py_DECREF(sendto);
            Py_DECREF(addr);
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

int route_protect_dedicated(Route *self, int stream, unsigned char *packet, int *length) {
    SentIndices *sent = &self->stream[stream].sent;
    uint16_t seq = (uint16_t)((packet[2] << 8) | packet[3]);
    uint64_t index, fingerprint;
    int64_t ahead;
    if (sent_index(sent, seq, &index, &ahead) == 0 &&
        protect_rtp(self->stream[stream].srtp, packet, length) == 0 && *length >= 20) {
        memcpy(&fingerprint, packet + *length - 8, sizeof fingerprint);
        if (sent_record(sent, index, ahead, fingerprint) == 0)
            return 0;
    }
    self->srtp_errors++;
    return -1;
}

/* ---- transport-cc ------------------------------------------------------------------------ */

/* Where the value of the one-byte-header extension element `id` with a 2-byte value starts in
 * `packet`, or 0. */
static int transport_cc_at(const unsigned char *packet, int length, int id) {
    if (length < 12 || !(packet[0] & 0x10))
        return 0;
    int at = 12 + 4 * (packet[0] & 0x0f);
    if (at + 4 > length || packet[at] != 0xbe || packet[at + 1] != 0xde)
        return 0;
    int end = at + 4 + 4 * ((packet[at + 2] << 8) | packet[at + 3]);
    if (end > length)
        return 0;
    for (int pos = at + 4; pos < end;) {
        int byte = packet[pos];
        if (byte == 0) { /* padding between elements */
            pos++;
            continue;
        }
        int element_id = byte >> 4, len = (byte & 0x0f) + 1;
        if (element_id == 15 || pos + 1 + len > end)
            return 0;
        if (element_id == id)
            return len == 2 ? pos + 1 : 0;
        pos += 1 + len;
    }
    return 0;
}

static int64_t monotonic_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

void route_stamp(Route *self, unsigned char *packet, int length) {
    int at = transport_cc_at(packet, length, self->transport_cc_id);
    if (at == 0 || self->transport_log == NULL) {
        self->last_transport_seq = -1;
        return;
    }
    uint16_t seq = self->transport_seq++;
    packet[at] = (unsigned char)(seq >> 8);
    packet[at + 1] = (unsigned char)seq;
    TransportSent *entry = &self->transport_log[seq & (TRANSPORT_LOG - 1)];
    entry->send_us = monotonic_us();
    entry->size = (uint32_t)length;
    entry->seq = seq;
    self->last_transport_seq = seq;
    self->stamped++;
}

void route_unstamp(Route *self) {
    if (self->last_transport_seq < 0)
        return;
    self->transport_log[self->last_transport_seq & (TRANSPORT_LOG - 1)].seq = -1;
    self->transport_seq--;
    self->stamped--;
    self->last_transport_seq = -1;
}

static PyObject *route_get_transport_cc_id(Route *self, void *unused) {
    return PyLong_FromLong(self->transport_cc_id);
}

static int route_set_transport_cc_id(Route *self, PyObject *value, void *unused) {
    long id = value != NULL ? PyLong_AsLong(value) : -1;
    if (id == -1 && PyErr_Occurred())
        return -1;
    if (id < 0 || id > 14) {
        PyErr_SetString(PyExc_ValueError, "transport_cc_id is 1 to 14 (0: no transport-cc)");
        return -1;
    }
    if (id != 0 && self->transport_log == NULL) {
        self->transport_log = PyMem_Calloc(TRANSPORT_LOG, sizeof(TransportSent));
        if (self->transport_log == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (int i = 0; i < TRANSPORT_LOG; i++)
            self->transport_log[i].seq = -1;
    }
    self->transport_cc_id = (int)id;
    return 0;
}

/* transport_sent(seqs) -> [(send_us, size) or None per seq] */
static PyObject *route_transport_sent(Route *self, PyObject *seqs) {
    PyObject *fast = PySequence_Fast(seqs, "transport_sent takes a sequence of numbers");
    if (fast == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        long seq = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
        if (seq == -1 && PyErr_Occurred()) {
            Py_CLEAR(out);
            break;
        }
        PyObject *item = NULL;
        if (seq >= 0 && seq <= 0xffff && self->transport_log != NULL) {
            TransportSent *entry = &self->transport_log[seq & (TRANSPORT_LOG - 1)];
            if (entry->seq == seq)
                item = Py_BuildValue("(Lk)", (long long)entry->send_us, (unsigned long)entry->size);
        }
        if (item == NULL && PyErr_Occurred()) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, item != NULL ? item : Py_NewRef(Py_None));
    }
    Py_DECREF(fast);
    return out;
}

static unsigned char scratch[SLOT_BYTES];

static PyObject *route_send(Route *self, PyObject *args) {
    Py_buffer packet;
    int rtcp = 0, stamp = 1;
    if (!PyArg_ParseTuple(args, "y*|pp", &packet, &rtcp, &stamp))
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
    if (!rtcp && length + SRTP_ROOM > self->max_datagram) {
        self->oversized++; /* an RTX resend or padding that would not fit the path */
        Py_RETURN_FALSE;
    }
    if (!rtcp && (stamp ? route_protect_rtp(self, scratch, &length)
                        : route_protect_rtp_as_is(self, scratch, &length)) != 0)
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
     "send(packet, rtcp=False, stamp=True): protect and send one packet now; False if not sent."
     " stamp=False: an RTP packet resent byte for byte keeps its transport-wide number."},
    {"transport_sent", (PyCFunction)route_transport_sent, METH_O,
     "transport_sent(seqs): per transport-wide sequence number, (send_us, size) of the packet"
     " stamped with it (send_us on time.monotonic_ns()'s clock, in us), or None when the log"
     " no longer (or never) had it."},
    {NULL},
};

static PyMemberDef route_members[] = {
    {"srtp_errors", T_ULONGLONG, offsetof(Route, srtp_errors), READONLY,
     "packets SRTP (libsrtp or a Sealer) refused to protect"},
    {"oversized", T_ULONGLONG, offsetof(Route, oversized), READONLY,
     "RTP packets of `send` not sent: with SRTP they would exceed max_datagram"},
    {"max_datagram", T_INT, offsetof(Route, max_datagram), 0,
     "bytes of an RTP datagram at most, SRTP's included (MAX_DATAGRAM; a test may raise it)"},
    {"send_errors", T_ULONGLONG, offsetof(Route, send_errors), READONLY,
     "protected packets the socket did not take"},
    {"dedicated", T_INT, offsetof(Route, streams), READONLY,
     "SSRCs whose RTP has an SRTP context (or a Sealer) of its own"},
    {"sealed", T_INT, offsetof(Route, sealed), READONLY, "... of which by a Sealer"},
    {"stamped", T_ULONGLONG, offsetof(Route, stamped), READONLY,
     "RTP packets sent with a transport-wide sequence number"},
    {"last_transport_seq", T_INT, offsetof(Route, last_transport_seq), READONLY,
     "the transport-wide number of the last packet protected (-1: it carried none)"},
    {NULL},
};

static PyObject *route_repeats(Route *self, void *unused) {
    unsigned long long repeats = 0;
    for (int i = 0; i < self->streams; i++)
        repeats += self->stream[i].sent.repeats;
    return PyLong_FromUnsignedLongLong(repeats);
}

static PyGetSetDef route_getset[] = {
    {"repeats", (getter)route_repeats, NULL,
     "packets refused (among srtp_errors) because their index protected a different packet",
     NULL},
    {"ready", (getter)route_ready, NULL, "whether packets can be sent", NULL},
    {"transport_cc_id", (getter)route_get_transport_cc_id, (setter)route_set_transport_cc_id,
     "the transport-wide-cc extension's id in the packets sent (0: none): each packet carrying"
     " its 2-byte element gets the connection's next transport-wide sequence number",
     NULL},
    {NULL},
};

PyTypeObject RouteType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "confsfu.server._wire.Route",
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

/* ---- libsrtp ---------------------------------------------------------------------------- */

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

static PyMethodDef route_functions[] = {
    {"set_protect", wire_set_protect, METH_VARARGS,
     "set_protect(protect_rtp, protect_rtcp, unprotect_rtp, unprotect_rtcp): addresses of "
     "libsrtp's srtp_protect, srtp_protect_rtcp, srtp_unprotect and srtp_unprotect_rtcp."},
    {"unprotect", (PyCFunction)(void (*)(void))wire_unprotect, METH_FASTCALL,
     "unprotect(srtp, data, rtcp) -> the clear packet, or None when libsrtp refuses it."},
    {NULL},
};

int route_add_to(PyObject *module) {
    if (PyType_Ready(&RouteType) < 0 || PyModule_AddFunctions(module, route_functions) < 0 ||
        PyModule_AddObjectRef(module, "Route", (PyObject *)&RouteType) < 0)
        return -1;
    return 0;
}
