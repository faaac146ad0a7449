/* confsfu.server._wire's Taps and pump: where an Intake meets its sockets and the clock.
 *
 * A Tap is one socket's datagram_received: what its intake can open goes to it (with the time
 * read here), everything else to the tap's `fallback`. The pump reads the sockets the taps
 * watch when Python asks (`pump`), between the steps of long Python work, so that a packet need
 * not wait in its socket for the whole of it.
 */
#include "_intake.h"
#include "_seal.h"

#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long monotonic_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now); /* the event loop's clock, in milliseconds */
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* ---- Tap: one socket's datagram_received ----------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Intake *intake;
    PyObject *fallback;
    int fd; /* our dup of the socket while the pump watches it, else -1 */
} Tap;

/* Whether the tap (or its intake) was cleared: nothing to hand to. */
static int tap_cleared(Tap *self) {
    return self->intake == NULL || self->fallback == NULL || !intake_ready(self->intake);
}

static PyObject *tap_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                PyObject *kwnames) {
    Tap *self = (Tap *)callable;
    if (PyVectorcall_NARGS(nargsf) != 2 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "datagram_received takes (data, addr)");
        return NULL;
    }
    if (tap_cleared(self)) {
        PyErr_SetString(PyExc_RuntimeError, "the tap's intake was cleared");
        return NULL;
    }
    PyObject *data = args[0];
    unsigned char clear[SEAL_MAX_PACKET];
    int n = -1;
    if (PyBytes_CheckExact(data))
        n = intake_open(self->intake, (const unsigned char *)PyBytes_AS_STRING(data),
                        PyBytes_GET_SIZE(data), clear);
    if (n == -2) /* over a limit: dropped (and counted) here */
        Py_RETURN_NONE;
    if (n < 0) /* not RTP, or refused: Python's path (which counts the refusal) */
        return PyObject_Vectorcall(self->fallback, args, 2, NULL);
    return intake_receive(self->intake, clear, n, monotonic_ms());
}

/* ---- the pump: the watched sockets read now, between steps of long Python work ----------- */

static int pump_epoll = -1;
static unsigned char pump_buffer[65536]; /* any UDP datagram, whole */
static int pumping = 0; /* pump() runs: a callback of the packets it read may be running */

static PyObject *tap_watch(Tap *self, PyObject *arg) {
    int fd = PyObject_AsFileDescriptor(arg);
    if (fd < 0)
        return NULL;
    if (self->fd >= 0) {
        PyErr_SetString(PyExc_ValueError, "the tap watches a socket already");
        return NULL;
    }
    int type = 0;
    socklen_t type_len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) < 0 || type != SOCK_DGRAM) {
        PyErr_SetString(PyExc_ValueError, "the pump reads datagram sockets only");
        return NULL;
    }
    if (pump_epoll < 0 && (pump_epoll = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = self};
    if (own < 0 || epoll_ctl(pump_epoll, EPOLL_CTL_ADD, own, &event) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        if (own >= 0)
            close(own);
        return NULL;
    }
    self->fd = own;
    Py_INCREF(self); /* the pump's, until unwatch */
    Py_RETURN_NONE;
}

static void tap_stop_watching(Tap *self) {
    if (self->fd < 0)
        return;
    epoll_ctl(pump_epoll, EPOLL_CTL_DEL, self->fd, NULL);
    close(self->fd);
    self->fd = -1;
    Py_DECREF(self);
}

static PyObject *tap_unwatch(Tap *self, PyObject *unused) {
    tap_stop_watching(self);
    Py_RETURN_NONE;
}

/* A datagram's sender as Python's socket module writes it. */
static PyObject *sender_address(const struct sockaddr_storage *from) {
    char host[INET6_ADDRSTRLEN];
    if (from->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)from;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        return Py_BuildValue("(si)", host, ntohs(a->sin_port));
    }
    if (from->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)from;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        return Py_BuildValue("(siII)", host, ntohs(a->sin6_port), ntohl(a->sin6_flowinfo),
                             a->sin6_scope_id);
    }
    Py_RETURN_NONE;
}

/* One datagram the pump read: taken by the intake, or defer(fallback, data, addr). */
static int tap_pumped(Tap *self, Py_ssize_t length, const struct sockaddr_storage *from,
                      PyObject *defer) {
    unsigned char clear[SEAL_MAX_PACKET];
    int n = intake_open(self->intake, pump_buffer, length, clear);
    if (n == -2)
        return 0; /* over a limit: dropped (and counted) */
    if (n >= 0) {
        PyObject *result = intake_receive(self->intake, clear, n, monotonic_ms());
        Py_XDECREF(result);
        return result != NULL ? 0 : -1;
    }
    PyObject *args[3] = {Py_NewRef(self->fallback),
                         PyBytes_FromStringAndSize((const char *)pump_buffer, length),
                         sender_address(from)};
    return call_with(defer, args, 3);
}

/* pump(defer, limit): read what waits in the watched sockets (at most `limit` datagrams). */
static PyObject *intake_pump(PyObject *module, PyObject *args) {
    PyObject *defer;
    int limit = 256;
    if (!PyArg_ParseTuple(args, "O|i", &defer, &limit))
        return NULL;
    if (!PyCallable_Check(defer) || limit < 1) {
        PyErr_SetString(PyExc_TypeError, "pump(defer, limit): a callable and a limit >= 1");
        return NULL;
    }
    if (pumping) { /* what it read next would overtake the packet being handled */
        PyErr_SetString(PyExc_RuntimeError, "pump() called from a callback of the pump");
        return NULL;
    }
    if (pump_epoll < 0)
        return PyLong_FromLong(0);
    struct epoll_event events[64];
    int ready = epoll_wait(pump_epoll, events, 64, 0);
    if (ready < 0)
        return errno == EINTR ? PyLong_FromLong(0) : PyErr_SetFromErrno(PyExc_OSError);
    Tap *taps[64];
    for (int i = 0; i < ready; i++) /* held: a callback may unwatch any of them */
        taps[i] = (Tap *)Py_NewRef((PyObject *)events[i].data.ptr);
    long read = 0;
    int failed = 0;
    pumping = 1;
    for (int i = 0; i < ready && !failed; i++) {
        Tap *tap = taps[i];
        if (tap->fd >= 0 && tap_cleared(tap))
            tap_stop_watching(tap);
        else if (tap->fd >= 0 && !intake_has_keys(tap->intake))
            continue; /* no keys yet: its RTP goes to Python, in order, by the loop */
        while (read < limit && tap->fd >= 0) {
            struct sockaddr_storage from;
            socklen_t from_len = sizeof from;
            ssize_t n = recvfrom(tap->fd, pump_buffer, sizeof pump_buffer, MSG_DONTWAIT,
                                 (struct sockaddr *)&from, &from_len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                break; /* drained (or an error the socket's owner will see) */
            read++;
            if (tap_pumped(tap, n, &from, defer) < 0) {
                failed = 1;
                break;
            }
        }
    }
    pumping = 0;
    for (int i = 0; i < ready; i++)
        Py_DECREF(taps[i]);
    return failed ? NULL : PyLong_FromLong(read);
}

static int tap_traverse(Tap *self, visitproc visit, void *arg) {
    Py_VISIT(self->intake);
    Py_VISIT(self->fallback);
    return 0;
}

static int tap_clear(Tap *self) {
    Py_CLEAR(self->intake);
    Py_CLEAR(self->fallback);
    return 0;
}

static void tap_dealloc(Tap *self) {
    PyObject_GC_UnTrack(self);
    tap_clear(self); /* never watched here: the pump holds a watched tap */
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *tap_get_watching(Tap *self, void *unused) {
    return PyBool_FromLong(self->fd >= 0);
}

static PyMethodDef tap_methods[] = {
    {"watch", (PyCFunction)tap_watch, METH_O,
     "watch(sock): pump() reads this socket too (a dup of it, until unwatch)."},
    {"unwatch", (PyCFunction)tap_unwatch, METH_NOARGS,
     "pump() no longer reads the socket; the tap lets go of its dup."},
    {NULL},
};

static PyGetSetDef tap_getset[] = {
    {"watching", (getter)tap_get_watching, NULL, "Whether pump() reads its socket.", NULL},
    {NULL},
};

static PyTypeObject TapType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "confsfu.server._wire.Tap",
    .tp_doc = "One socket's datagram_received(data, addr) in front of an Intake (Intake.tap).",
    .tp_basicsize = sizeof(Tap),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Tap, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_traverse = (traverseproc)tap_traverse,
    .tp_clear = (inquiry)tap_clear,
    .tp_dealloc = (destructor)tap_dealloc,
    .tp_methods = tap_methods,
    .tp_getset = tap_getset,
};

PyObject *tap_new(Intake *self, PyObject *fallback) {
    Tap *tap = PyObject_GC_New(Tap, &TapType);
    if (tap == NULL)
        return NULL;
    tap->vectorcall = tap_vectorcall;
    tap->intake = (Intake *)Py_NewRef(self);
    tap->fallback = Py_NewRef(fallback);
    tap->fd = -1;
    PyObject_GC_Track(tap);
    return (PyObject *)tap;
}

static PyMethodDef pump_methods[] = {
    {"pump", intake_pump, METH_VARARGS,
     "pump(defer, limit=256): read what waits in the watched sockets now (at most `limit` "
     "datagrams): the intakes take their RTP, the rest goes to defer(fallback, data, addr). "
     "How many were read."},
    {NULL},
};

int tap_add_to(PyObject *module) {
    if (PyType_Ready(&TapType) < 0 || PyModule_AddFunctions(module, pump_methods) < 0)
        return -1;
    return 0;
}
