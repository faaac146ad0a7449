/* confsfu._wire's intake: a publisher's packets from its socket to the subscribers' send queue.
 *
 * Track is one incoming media SSRC: sequence numbers, loss and the NACKs it is owed (the
 * specification is confsfu.forwarding.reception.Reception), its VP8 picture ids unwrapped,
 * and the layer it carries (and the LayerCounts of its source). An Intake is a publish
 * connection's: its Taps stand in for the sockets' datagram_received, open SRTP, read the
 * header, find the Track and hand the packet to fan_out_packet, with no Python object but the
 * payload. Everything else goes to Python untouched: STUN, DTLS, RTCP and SRTP it cannot open
 * (the tap's `fallback`), and RTP it does not take (`slow`: an unknown SSRC, RTX, anything
 * malformed), before anything is counted or changed. RTX of a track, once Python has named it (add_repair), is unwrapped here. Python
 * hears of keyframes, audio levels and slots that switched or lost their route.
 *
 * The pump reads the sockets its taps watch when Python asks (`pump`), between the steps of
 * long Python work, so that a packet need not wait in its socket for the whole of it.
 */
#include "_wire.h"
#include "_seal.h"
#include "bandwidth/_counts.h"
#include "rtp/_scan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_TRACKED_MISSING = 512, MAX_TRACKS = 32, TAG_LENGTH = 16 };

static const CountsApi *counts_api; /* confsfu.bandwidth._counts */

/* ---- Track ---------------------------------------------------------------------------- */

typedef struct {
    int64_t ext, first_ms;
    int sent;
} Missing;

typedef struct {
    PyObject_HEAD
    uint32_t ssrc;
    int nack_delay_ms, nack_retries;
    int64_t highest_ext, base_ext, received, expected_prior, received_prior;
    Missing *missing; /* ascending by ext; allocated at the first gap */
    int n_missing;
    unsigned long long bytes_received;
    long long last_packet_ms, last_ext;
    int has_picture;
    long long last_picture;
    PyObject *key;   /* the layer key its packets carry (set by route), or NULL */
    PyObject *meter; /* the source's LayerCounts, or NULL */
    int is_video, layer;
} Track;

static PyTypeObject TrackType;

static int track_on_packet(Track *t, long long now_ms, int seq, Py_ssize_t size) {
    t->last_packet_ms = now_ms;
    t->bytes_received += (unsigned long long)size;
    if (t->highest_ext < 0) {
        t->highest_ext = t->base_ext = t->last_ext = seq;
        t->received = 1;
        return 1;
    }
    int delta = (uint16_t)(seq - (int)(t->highest_ext & 0xffff));
    if (delta == 0)
        return 0;
    int64_t ext;
    if (delta < 0x8000) {
        ext = t->highest_ext + delta;
        int64_t first_gap = t->highest_ext + 1;
        if (ext - first_gap > MAX_TRACKED_MISSING)
            first_gap = ext - MAX_TRACKED_MISSING; /* only the newest gaps are kept */
        int gaps = (int)(ext - first_gap);
        if (gaps > 0) {
            if (t->missing == NULL &&
                (t->missing = PyMem_Malloc(MAX_TRACKED_MISSING * sizeof(Missing))) == NULL)
                return -1;
            int drop = t->n_missing + gaps - MAX_TRACKED_MISSING;
            if (drop > 0) {
                t->n_missing -= drop;
                memmove(t->missing, t->missing + drop, (size_t)t->n_missing * sizeof(Missing));
            }
            for (int64_t gap = first_gap; gap < ext; gap++)
                t->missing[t->n_missing++] = (Missing){gap, now_ms, 0};
        }
        t->highest_ext = ext;
    } else {
        ext = t->highest_ext - (0x10000 - delta);
        int lo = 0, hi = t->n_missing;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (t->missing[mid].ext < ext)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == t->n_missing || t->missing[lo].ext != ext)
            return 0; /* a duplicate, or older than anything tracked */
        t->n_missing--;
        memmove(t->missing + lo, t->missing + lo + 1, (size_t)(t->n_missing - lo) * sizeof(Missing));
    }
    t->received++;
    t->last_ext = ext;
    return 1;
}

static long long track_unwrap_picture(Track *t, long long value) {
    long long extended = !t->has_picture
                             ? (value & 0x7fff)
                             : t->last_picture + (((value - t->last_picture + 0x4000) & 0x7fff) - 0x4000);
    t->has_picture = 1;
    t->last_picture = extended;
    return extended;
}

static int track_init(Track *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"ssrc", "nack_delay_ms", "nack_retries", NULL};
    unsigned int ssrc;
    int delay = 10, retries = 5;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "I|$ii", names, &ssrc, &delay, &retries))
        return -1;
    self->ssrc = ssrc;
    self->nack_delay_ms = delay;
    self->nack_retries = retries;
    self->highest_ext = self->last_ext = -1;
    self->base_ext = self->received = self->expected_prior = self->received_prior = 0;
    self->n_missing = 0;
    self->bytes_received = 0;
    self->last_packet_ms = 0;
    self->has_picture = 0;
    return 0;
}

static int track_traverse(Track *self, visitproc visit, void *arg) {
    Py_VISIT(self->key);
    Py_VISIT(self->meter);
    return 0;
}

static int track_clear(Track *self) {
    Py_CLEAR(self->key);
    Py_CLEAR(self->meter);
    return 0;
}

static void track_dealloc(Track *self) {
    PyObject_GC_UnTrack(self);
    track_clear(self);
    PyMem_Free(self->missing);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *track_on_packet_py(Track *self, PyObject *args) {
    long long now_ms;
    int seq;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "Lin", &now_ms, &seq, &size))
        return NULL;
    if (seq < 0 || seq > 0xffff)
        return PyErr_Format(PyExc_ValueError, "a sequence number is 0 to 65535, not %d", seq);
    int accepted = track_on_packet(self, now_ms, seq, size);
    if (accepted < 0)
        return PyErr_NoMemory();
    return PyBool_FromLong(accepted);
}

static PyObject *track_nacks_due(Track *self, PyObject *arg) {
    long long now_ms = PyLong_AsLongLong(arg);
    if (now_ms == -1 && PyErr_Occurred())
        return NULL;
    PyObject *due = PyList_New(0);
    int kept = 0;
    for (int i = 0; due != NULL && i < self->n_missing; i++) {
        Missing m = self->missing[i];
        if (m.sent >= self->nack_retries)
            continue; /* asked for often enough: forgotten */
        if (now_ms - m.first_ms >= (long long)self->nack_delay_ms * (1 + m.sent)) {
            m.sent++;
            PyObject *seq = PyLong_FromLong((long)(m.ext & 0xffff));
            if (seq == NULL || PyList_Append(due, seq) < 0)
                Py_CLEAR(due);
            Py_XDECREF(seq);
        }
        self->missing[kept++] = m;
    }
    if (due != NULL)
        self->n_missing = kept;
    return due;
}

static PyTypeObject *ReportType; /* the values of one RTCP report block, a named tuple */

static PyStructSequence_Field report_fields[] = {
    {"ssrc", NULL}, {"fraction_lost", NULL}, {"packets_lost", NULL},
    {"highest_sequence", NULL}, {"jitter", NULL}, {NULL, NULL},
};

static PyStructSequence_Desc report_desc = {
    "confsfu._wire.ReceptionReport",
    "The values of one RTCP report block (RFC 3550 6.4.1), as of now.", report_fields, 5};

static PyObject *track_report(Track *self, PyObject *unused) {
    int started = self->highest_ext >= 0;
    int64_t expected = started ? self->highest_ext - self->base_ext + 1 : 0;
    int64_t lost = expected - self->received > 0 ? expected - self->received : 0;
    int64_t expected_interval = expected - self->expected_prior;
    int64_t lost_interval = expected_interval - (self->received - self->received_prior);
    self->expected_prior = expected;
    self->received_prior = self->received;
    long fraction = 0;
    if (expected_interval > 0 && lost_interval > 0) {
        int64_t f = (lost_interval << 8) / expected_interval;
        fraction = (long)(f < 255 ? f : 255);
    }
    PyObject *report = PyStructSequence_New(ReportType);
    if (report == NULL)
        return NULL;
    PyObject *values[5] = {
        PyLong_FromUnsignedLong(self->ssrc), PyLong_FromLong(fraction),
        PyLong_FromLongLong(lost < 0x7fffff ? lost : 0x7fffff),
        PyLong_FromLongLong((started ? self->highest_ext : 0) & 0xffffffff), PyLong_FromLong(0)};
    for (int i = 0; i < 5; i++) {
        if (values[i] == NULL) {
            for (int j = i; j < 5; j++)
                Py_XDECREF(values[j]);
            Py_DECREF(report);
            return NULL;
        }
        PyStructSequence_SET_ITEM(report, i, values[i]);
    }
    return report;
}

static PyObject *track_unwrap_picture_py(Track *self, PyObject *arg) {
    long long value = PyLong_AsLongLong(arg);
    if (value == -1 && PyErr_Occurred())
        return NULL;
    return PyLong_FromLongLong(track_unwrap_picture(self, value));
}

static PyObject *track_route(Track *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"key", "is_video", "layer", "meter", NULL};
    PyObject *key, *meter = Py_None;
    int is_video, layer;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Opi|O", names, &key, &is_video, &layer, &meter))
        return NULL;
    if (key == Py_None) {
        PyErr_SetString(PyExc_TypeError, "a track's key is a layer key, not None");
        return NULL;
    }
    if (meter != Py_None && !PyObject_TypeCheck(meter, counts_api->type)) {
        PyErr_SetString(PyExc_TypeError, "the meter is the source's LayerCounts or None");
        return NULL;
    }
    if (layer < 0 || layer > 2) {
        PyErr_SetString(PyExc_ValueError, "a simulcast layer is 0 to 2");
        return NULL;
    }
    Py_XSETREF(self->key, Py_NewRef(key));
    Py_XSETREF(self->meter, meter == Py_None ? NULL : Py_NewRef(meter));
    self->is_video = is_video;
    self->layer = layer;
    Py_RETURN_NONE;
}

static PyObject *track_get_started(Track *self, void *unused) {
    return PyBool_FromLong(self->highest_ext >= 0);
}

static PyObject *track_get_key(Track *self, void *unused) {
    return Py_NewRef(self->key != NULL ? self->key : Py_None);
}

static PyMethodDef track_methods[] = {
    {"on_packet", (PyCFunction)track_on_packet_py, METH_VARARGS,
     "on_packet(now_ms, sequence_number, size_bytes): count a packet; False when it is a "
     "duplicate or too old to matter."},
    {"nacks_due", (PyCFunction)track_nacks_due, METH_O,
     "nacks_due(now_ms): the 16-bit sequence numbers to NACK now."},
    {"report", (PyCFunction)track_report, METH_NOARGS,
     "report() -> ReceptionReport(ssrc, fraction_lost, packets_lost, highest_sequence, jitter),"
     " as of now; resets the interval counters of fraction lost."},
    {"unwrap_picture", (PyCFunction)track_unwrap_picture_py, METH_O,
     "unwrap_picture(picture_id): the 15-bit VP8 picture id on an unbounded int."},
    {"route", (PyCFunction)(void (*)(void))track_route, METH_VARARGS | METH_KEYWORDS,
     "route(key, is_video, layer, meter=None): what an Intake does with its packets (`meter`:"
     " the LayerCounts of its source)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef track_members[] = {
    {"ssrc", T_UINT, offsetof(Track, ssrc), READONLY, NULL},
    {"bytes_received", T_ULONGLONG, offsetof(Track, bytes_received), READONLY, NULL},
    {"last_packet_ms", T_LONGLONG, offsetof(Track, last_packet_ms), READONLY, NULL},
    {"last_ext", T_LONGLONG, offsetof(Track, last_ext), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef track_getset[] = {
    {"started", (getter)track_get_started, NULL, "a packet has been counted", NULL},
    {"key", (getter)track_get_key, NULL, "the layer key its packets carry, or None", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject TrackType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "confsfu._wire.Reception",
    .tp_doc = "Reception(ssrc, *, nack_delay_ms=10, nack_retries=5): one incoming media SSRC (the C twin of confsfu.forwarding.reception.Reception).",
    .tp_basicsize = sizeof(Track),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)track_init,
    .tp_traverse = (traverseproc)track_traverse,
    .tp_clear = (inquiry)track_clear,
    .tp_dealloc = (destructor)track_dealloc,
    .tp_methods = track_methods,
    .tp_members = track_members,
    .tp_getset = track_getset,
};

/* ---- Intake --------------------------------------------------------------------------- */

enum {
    C_PACKETS_IN, C_BYTES_IN, C_PACKETS_OUT, C_BYTES_OUT, C_RTX_IN, /* counters */
    C_DUPLICATE, C_CHAIR_MUTED, C_RTX_PADDING, /* drops */
    C_COUNT
};
static const char *count_names[C_COUNT] = {"packets_in", "bytes_in",  "packets_out",
                                           "bytes_out",  "rtx_in",    "duplicate",
                                           "chair_muted", "rtx_padding"};

/* An RTX stream (RFC 4588) repairing a track: its packets carry the original sequence number
 * in front of the original payload. */
typedef struct {
    uint32_t ssrc;
    int payload_type;
    Track *media;
} Repair;

/* Its callables, in the order of `callable_names`. */
enum { K_SLOW, K_ON_LEVEL, K_ON_KEYFRAME, K_AFTER_FAN_OUT, K_SCHEDULE_FLUSH, K_COUNT };
static const char *callable_names[K_COUNT] = {"slow", "on_level", "on_keyframe", "after_fan_out",
                                              "schedule_flush"};

typedef struct {
    PyObject_HEAD
    PyObject *call[K_COUNT];
    PyObject *pid;      /* str: on_level's second argument */
    PyObject *fan_outs; /* dict: layer key -> fan-out entries */
    PyObject *opener;   /* an Opener once AES-GCM keys exist, else NULL */
    void *srtp;         /* else libsrtp's receiving context once the keys exist, else NULL */
    PyObject *srtp_owner; /* keeps `srtp` alive (the pylibsrtp Session) */
    int level_id;       /* the audio-level extension's id, or 0 */
    int level_floor;    /* levels this quiet or quieter go unreported unless voice is flagged */
    int gate_audio, gate_video, max_packet;
    Track *tracks[MAX_TRACKS];
    int n_tracks;
    Repair repairs[MAX_TRACKS];
    int n_repairs;
    unsigned long long counts[C_COUNT];
} Intake;

static PyTypeObject IntakeType;

static long long monotonic_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now); /* the event loop's clock, in milliseconds */
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static Track *intake_track(Intake *self, uint32_t ssrc) {
    for (int i = 0; i < self->n_tracks; i++)
        if (self->tracks[i]->ssrc == ssrc)
            return self->tracks[i];
    return NULL;
}

static Repair *intake_repair(Intake *self, uint32_t ssrc) {
    for (int i = 0; i < self->n_repairs; i++)
        if (self->repairs[i].ssrc == ssrc)
            return &self->repairs[i];
    return NULL;
}

static PyObject *call_slow(Intake *self, const unsigned char *clear, int length, long long now_ms) {
    PyObject *args[2] = {PyBytes_FromStringAndSize((const char *)clear, length),
                         PyLong_FromLongLong(now_ms)};
    PyObject *result = NULL;
    if (args[0] != NULL && args[1] != NULL)
        result = PyObject_Vectorcall(self->call[K_SLOW], args, 2, NULL);
    Py_XDECREF(args[0]);
    Py_XDECREF(args[1]);
    return result;
}

/* fn(*args) for `count` new references (released, even when NULL: then -1). */
static int call_with(PyObject *fn, PyObject **args, int count) {
    int ok = 1;
    for (int i = 0; i < count; i++)
        ok = ok && args[i] != NULL;
    PyObject *result = ok ? PyObject_Vectorcall(fn, args, (size_t)count, NULL) : NULL;
    for (int i = 0; i < count; i++)
        Py_XDECREF(args[i]);
    Py_XDECREF(result);
    return result != NULL ? 0 : -1;
}

/* The fan-out of one taken packet, and what Python must hear of it. */
static int intake_forward(Intake *self, Track *t, const Packet *p, long long now_ms,
                          const unsigned char *stamp) {
    PyObject *entries = PyDict_GetItemWithError(self->fan_outs, t->key);
    if (entries == NULL)
        return PyErr_Occurred() ? -1 : 0; /* a layer no slot carries (or awaits) */
    FanResult r;
    int status = fan_out_packet(entries, p, now_ms, stamp, &r);
    if (status == 0) {
        self->counts[C_PACKETS_OUT] += (unsigned long long)r.sent;
        self->counts[C_BYTES_OUT] += (unsigned long long)r.bytes;
        if (r.switched != NULL || r.unrouted != NULL) {
            PyObject *args[2] = {r.switched ? r.switched : Py_None,
                                 r.unrouted ? r.unrouted : Py_None};
            PyObject *result = PyObject_Vectorcall(self->call[K_AFTER_FAN_OUT], args, 2, NULL);
            status = result != NULL ? 0 : -1;
            Py_XDECREF(result);
        }
        Py_XDECREF(r.switched);
        Py_XDECREF(r.unrouted);
    }
    if (wire_flush_wanted()) {
        PyObject *result = PyObject_CallNoArgs(self->call[K_SCHEDULE_FLUSH]);
        if (result == NULL)
            status = -1;
        Py_XDECREF(result);
    }
    return status;
}

/* One clear RTP packet: taken here, or handed to `slow` before anything is counted. */
static PyObject *intake_receive(Intake *self, const unsigned char *d, int length,
                                long long now_ms) {
    RtpScan h;
    Vp8Scan v;
    if (length > self->max_packet || rtp_scan(d, length, &h) < 0)
        return call_slow(self, d, length, now_ms);
    Track *t = intake_track(self, h.ssrc);
    Py_ssize_t payload_length = h.payload_end - h.payload_start;
    int repair = 0;
    if (t == NULL) {
        Repair *r = intake_repair(self, h.ssrc);
        if (r != NULL && r->payload_type == h.payload_type) {
            t = r->media;
            repair = 1;
            if (payload_length < 2) { /* padding (a bandwidth probe): nothing to repair */
                self->counts[C_PACKETS_IN]++;
                self->counts[C_BYTES_IN] += (unsigned long long)length;
                self->counts[C_RTX_PADDING]++;
                Py_RETURN_NONE;
            }
            h.seq = (d[h.payload_start] << 8) | d[h.payload_start + 1]; /* the original's */
            h.payload_start += 2;
            payload_length -= 2;
        }
    }
    if (t == NULL || t->key == NULL ||
        (t->is_video && payload_length > 0 && vp8_scan(d + h.payload_start, payload_length, &v) < 0))
        return call_slow(self, d, length, now_ms);
    self->counts[C_PACKETS_IN]++;
    self->counts[C_BYTES_IN] += (unsigned long long)length;
    self->counts[C_RTX_IN] += (unsigned long long)repair;
    int accepted = track_on_packet(t, now_ms, h.seq, length);
    if (accepted <= 0) {
        if (accepted < 0)
            return PyErr_NoMemory();
        self->counts[C_DUPLICATE]++;
        Py_RETURN_NONE;
    }
    if (payload_length == 0)
        Py_RETURN_NONE; /* padding only */
    if (!(t->is_video ? self->gate_video : self->gate_audio)) {
        self->counts[C_CHAIR_MUTED]++;
        Py_RETURN_NONE;
    }
    /* The callbacks below may drop the track from the intake, or the intake from its socket. */
    Py_INCREF(t);
    Py_INCREF(self);
    Packet p = {.n_held = 0};
    p.key = t->key;
    p.ext_seq = t->last_ext;
    p.timestamp = h.timestamp;
    p.seq = h.seq;
    p.marker = h.marker;
    p.temporal_id = p.picture_id = p.tl0picidx = -1;
    unsigned char stamp[3], *send_time = NULL;
    int failed = 0;
    if (t->is_video) {
        if (v.keyframe) {
            PyObject *result = PyObject_CallOneArg(self->call[K_ON_KEYFRAME], t->key);
            failed = result == NULL;
            Py_XDECREF(result);
        }
        if (t->meter != NULL) /* a temporal layer above the meter's 3 is not measured */
            counts_api->add((LayerCounts *)t->meter, now_ms, t->layer,
                            v.has_temporal_id ? v.temporal_id : 0, length);
        p.keyframe = v.keyframe;
        p.starts_frame = v.start && v.partition == 0;
        p.layer_sync = v.layer_sync;
        if (v.has_temporal_id)
            p.temporal_id = v.temporal_id;
        if (v.has_tl0picidx)
            p.tl0picidx = v.tl0picidx;
        if (v.has_picture_id) {
            p.picture_id = v.picture_id;
            p.has_ext_picture = 1;
            p.ext_picture = track_unwrap_picture(t, v.picture_id);
        }
        p.has_descriptor = 1;
        p.descriptor = (Descriptor){v.size, v.picture_id_offset, v.picture_id_bits,
                                    v.tl0picidx_offset};
        uint32_t abs_send_time = (uint32_t)((((unsigned long long)now_ms) << 18) / 1000) & 0xffffff;
        stamp[0] = (unsigned char)(abs_send_time >> 16);
        stamp[1] = (unsigned char)(abs_send_time >> 8);
        stamp[2] = (unsigned char)abs_send_time;
        send_time = stamp;
    } else if (self->level_id > 0) {
        Py_ssize_t at = 0;
        int size = 0;
        if (rtp_find_extension(d, &h, self->level_id, &at, &size) && size >= 1 &&
            ((d[at] & 0x80) || (d[at] & 0x7f) < self->level_floor)) {
            PyObject *args[4] = {PyLong_FromLongLong(now_ms), Py_NewRef(self->pid),
                                 PyLong_FromLong(d[at] & 0x7f), PyBool_FromLong(d[at] & 0x80)};
            failed = call_with(self->call[K_ON_LEVEL], args, 4) < 0;
        }
    }
    if (!failed) {
        p.payload = PyBytes_FromStringAndSize((const char *)d + h.payload_start, payload_length);
        failed = p.payload == NULL || intake_forward(self, t, &p, now_ms, send_time) < 0;
        Py_XDECREF(p.payload);
    }
    Py_DECREF(t);
    Py_DECREF(self);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

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
            PyErr_Format(PyExc_TypeError, "%s must be callable", callable_names[i]);
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
    if (!PyObject_TypeCheck(arg, &TrackType)) {
        PyErr_SetString(PyExc_TypeError, "add() takes a Track");
        return NULL;
    }
    Track *track = (Track *)arg;
    for (int i = 0; i < self->n_tracks; i++)
        if (self->tracks[i]->ssrc == track->ssrc) {
            Py_SETREF(self->tracks[i], (Track *)Py_NewRef(arg));
            Py_RETURN_TRUE;
        }
    if (self->n_tracks == MAX_TRACKS)
        Py_RETURN_FALSE; /* its packets keep going the slow way */
    self->tracks[self->n_tracks++] = (Track *)Py_NewRef(arg);
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
    if (!PyArg_ParseTuple(args, "IiO!", &ssrc, &payload_type, &TrackType, &media))
        return NULL;
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
    Py_XSETREF(r->media, (Track *)Py_NewRef(media));
    Py_RETURN_TRUE;
}

/* {name: count} of counts[first:end], each set back to 0. */
static PyObject *take_range(Intake *self, int first, int end) {
    PyObject *counts = PyDict_New();
    for (int i = first; counts != NULL && i < end; i++) {
        if (self->counts[i] == 0)
            continue;
        PyObject *n = PyLong_FromUnsignedLongLong(self->counts[i]);
        if (n == NULL || PyDict_SetItemString(counts, count_names[i], n) < 0)
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
    if (self->call[K_SLOW] == NULL) {
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
    Py_XSETREF(self->opener, value == NULL || value == Py_None ? NULL : Py_NewRef(value));
    return 0;
}

static PyObject *intake_tap(Intake *self, PyObject *fallback);

static PyMethodDef intake_methods[] = {
    {"tap", (PyCFunction)intake_tap, METH_O,
     "tap(fallback) -> a socket protocol's datagram_received(data, addr): SRTP the intake can "
     "open goes to it, everything else to fallback(data, addr)."},
    {"add", (PyCFunction)intake_add, METH_O,
     "add(track): take the packets of its SSRC from now on (replacing a track of the same "
     "SSRC); False when the intake holds as many as it can."},
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
    {"level_floor", T_INT, offsetof(Intake, level_floor), 0,
     "audio levels (-dBov) at or above it go unreported unless the voice flag is set"},
    {"gate_audio", T_BOOL, offsetof(Intake, gate_audio), 0, "audio may be forwarded"},
    {"gate_video", T_BOOL, offsetof(Intake, gate_video), 0, "video may be forwarded"},
    {"pid", T_OBJECT_EX, offsetof(Intake, pid), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef intake_getset[] = {
    {"opener", (getter)intake_get_opener, (setter)intake_set_opener,
     "what opens the connection's SRTP (None: everything goes to `fallback`)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject IntakeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "confsfu._wire.Intake",
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

/* ---- Tap: one socket's datagram_received ----------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Intake *intake;
    PyObject *fallback;
    int fd; /* our dup of the socket while the pump watches it, else -1 */
} Tap;

/* Open one datagram as SRTP-protected RTP into `clear` (SEAL_MAX_PACKET bytes): its length,
 * or -1 when it is not RTP the intake can open (STUN, DTLS, RTCP, no keys yet, refused). */
static int intake_open(Intake *intake, const unsigned char *in, Py_ssize_t length,
                       unsigned char *clear) {
    int rtp = length >= 12 + TAG_LENGTH && length <= SEAL_MAX_PACKET && 127 < in[0] &&
              in[0] < 192 && !(192 <= in[1] && in[1] <= 223);
    if (!rtp)
        return -1;
    if (intake->opener != NULL)
        return opener_open((Opener *)intake->opener, in, (int)length, clear);
    if (intake->srtp == NULL)
        return -1;
    memcpy(clear, in, (size_t)length); /* libsrtp opens in place: a copy of our own */
    int n = (int)length;
    return wire_unprotect_rtp(intake->srtp, clear, &n) < 0 ? -1 : n;
}

/* Whether the tap (or its intake) was cleared, or never initialised: nothing to hand to. */
static int tap_cleared(Tap *self) {
    return self->intake == NULL || self->fallback == NULL || self->intake->call[K_SLOW] == NULL;
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
    if (n < 0) /* not RTP, or refused: Python's path (which counts the refusal) */
        return PyObject_Vectorcall(self->fallback, args, 2, NULL);
    return intake_receive(self->intake, clear, n, monotonic_ms());
}

/* ---- the pump: the watched sockets read now, between steps of long Python work ----------- */

static int pump_epoll = -1;
static unsigned char pump_buffer[65536]; /* any UDP datagram, whole */

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
    for (int i = 0; i < ready && !failed; i++) {
        Tap *tap = taps[i];
        if (tap->fd >= 0 && tap_cleared(tap))
            tap_stop_watching(tap);
        else if (tap->fd >= 0 && tap->intake->opener == NULL && tap->intake->srtp == NULL)
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
    .tp_name = "confsfu._wire.Tap",
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

static PyObject *intake_tap(Intake *self, PyObject *fallback) {
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "the fallback must be callable");
        return NULL;
    }
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

int intake_add_to(PyObject *module) {
    PyObject *counts_module = PyImport_ImportModule("confsfu.bandwidth._counts");
    if (counts_module == NULL)
        return -1;
    Py_DECREF(counts_module);
    if ((counts_api = PyCapsule_Import(COUNTS_API_CAPSULE, 0)) == NULL)
        return -1;
    if ((ReportType = PyStructSequence_NewType(&report_desc)) == NULL)
        return -1;
    if (PyType_Ready(&TrackType) < 0 || PyType_Ready(&IntakeType) < 0 ||
        PyType_Ready(&TapType) < 0)
        return -1;
    if (PyModule_AddFunctions(module, pump_methods) < 0 ||
        PyModule_AddObjectRef(module, "Reception", (PyObject *)&TrackType) < 0 ||
        PyModule_AddObjectRef(module, "Intake", (PyObject *)&IntakeType) < 0)
        return -1;
    return 0;
}
