/* confsfu.server._wire's intake: a publisher's packets from its socket to the subscribers' send
 * queue.
 *
 * An Intake is a publish connection's: its Taps (_tap.c) stand in for the sockets'
 * datagram_received and hand it the datagrams; it opens SRTP, reads the header, finds the
 * packet's Reception (confsfu.forwarding._reception: sequence state, loss, NACKs, picture ids,
 * the layer it carries) and hands the packet to fan_out_packet, with no Python object but the
 * payload. Everything else goes to Python untouched: STUN, DTLS, RTCP and SRTP it cannot open
 * (the tap's `fallback`), and RTP it does not take (`slow`: an unknown SSRC, RTX not named,
 * anything malformed), before anything is counted or changed. RTX of a track, once Python has
 * named it (add_repair), is unwrapped here. Python hears of keyframes, audio levels and slots
 * that switched or lost their route. The time of each packet is the caller's (the tap reads the
 * clock).
 */
#include "_intake.h"
#include "_seal.h"
#include "bandwidth/_counts.h"
#include "forwarding/_reception.h"
#include "rtp/_scan.h"

#include <structmember.h>

#include <stddef.h>
#include <string.h>

enum { MAX_TRACKS = 32, TAG_LENGTH = 16 };
enum { LACKING_BELOW = 32 }; /* of 64: confsfu.conference.voice_activity's */

static const CountsApi *counts_api;       /* confsfu.bandwidth._counts */
static const ReceptionApi *reception_api; /* confsfu.forwarding._reception */

enum {
    C_PACKETS_IN, C_BYTES_IN, C_PACKETS_OUT, C_BYTES_OUT, C_RTX_IN, /* counters */
    C_DUPLICATE, C_CHAIR_MUTED, C_RTX_PADDING, C_SSRC_LIMIT, /* drops */
    C_COUNT
};
static const char *count_names[C_COUNT] = {"packets_in", "bytes_in",  "packets_out",
                                           "bytes_out",  "rtx_in",    "duplicate",
                                           "chair_muted", "rtx_padding", "ssrc_limit"};

/* An RTX stream (RFC 4588) repairing a track: its packets carry the original sequence number
 * in front of the original payload. */
typedef struct {
    uint32_t ssrc;
    int payload_type;
    Reception *media;
} Repair;

/* Its callables, in the order of `callable_names`. */
enum { K_SLOW, K_ON_LEVEL, K_ON_KEYFRAME, K_AFTER_FAN_OUT, K_SCHEDULE_FLUSH, K_COUNT };
static const char *callable_names[K_COUNT] = {"slow", "on_level", "on_keyframe", "after_fan_out",
                                              "schedule_flush"};

struct Intake {
    PyObject_HEAD
    PyObject *call[K_COUNT];
    PyObject *pid;      /* str: on_level's second argument */
    PyObject *on_gap;   /* on_gap(now_ms) when a packet leaves a gap, or NULL / None */
    PyObject *fan_outs; /* dict: layer key -> fan-out entries */
    PyObject *opener;   /* an Opener once AES-GCM keys exist, else NULL */
    void *srtp;         /* else libsrtp's receiving context once the keys exist, else NULL */
    PyObject *srtp_owner; /* keeps `srtp` alive (the pylibsrtp Session) */
    int level_id;       /* the audio-level extension's id, or 0 */
    int level_floor;    /* levels this quiet or quieter go unreported unless voice is flagged */
    uint64_t level_bits; /* bit k: the k-th latest audio packet carried a level */
    int voice_frame_bytes; /* judge packets without a level by size: bytes per frame, 0 = off */
    int voice_dbov;     /* ... and report those holding sound at this level */
    int gate_audio, gate_video, max_packet;
    Reception *tracks[MAX_TRACKS];
    int n_tracks;
    Repair repairs[MAX_TRACKS];
    int n_repairs;
    /* The SSRCs libsrtp opened RTP of: each is a stream libsrtp keeps and walks for every
     * packet, so a connection gets no more (the Opener keeps its own 256). */
    uint32_t srtp_ssrcs[MAX_TRACKS];
    int n_srtp_ssrcs;
    unsigned long long counts[C_COUNT];
};

int intake_ready(const Intake *self) { return self->call[K_SLOW] != NULL; }

int intake_has_keys(const Intake *self) { return self->opener != NULL || self->srtp != NULL; }

static Reception *intake_track(Intake *self, uint32_t ssrc) {
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

int call_with(PyObject *fn, PyObject **args, int count) {
    int ok = 1;
    for (int i = 0; i < count; i++)
        ok = ok && args[i] != NULL;
    PyObject *result = ok ? PyObject_Vectorcall(fn, args, (size_t)count, NULL) : NULL;
    for (int i = 0; i < count; i++)
        Py_XDECREF(args[i]);
    Py_XDECREF(result);
    return result != NULL ? 0 : -1;
}

/* Whether an Opus packet holds sound: at least `frame_bytes` per frame, as
 * confsfu.conference.voice_activity judges it (its TOC read as confsfu.codecs.opus does). */
static int opus_sounds(const unsigned char *payload, Py_ssize_t length, int frame_bytes) {
    static const unsigned char frame_quanta[32] = {4, 8, 16, 24, 4, 8, 16, 24, 4, 8, 16,
                                                   24, 4, 8, 4, 8, 1, 2, 4, 8, 1, 2,
                                                   4, 8, 1, 2, 4, 8, 1, 2, 4, 8};
    if (length < 1)
        return 0;
    int code = payload[0] & 3, frames;
    if (code == 0)
        frames = 1;
    else if (code < 3)
        frames = 2;
    else if (length < 2)
        return 0;
    else
        frames = payload[1] & 0x3f;
    int quanta = frame_quanta[payload[0] >> 3] * frames;
    return quanta > 0 && quanta <= 48 && length >= (Py_ssize_t)frame_bytes * frames;
}

/* The fan-out of one taken packet, and what Python must hear of it. */
static int intake_forward(Intake *self, Reception *t, const Packet *p, long long now_ms,
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

/* A packet left a gap behind it: on_gap(now_ms), if set, hears of it (NACKs will be due).
 * None, or NULL with an exception set. */
static PyObject *tell_gap(Intake *self, long long now_ms) {
    if (self->on_gap == NULL || self->on_gap == Py_None)
        Py_RETURN_NONE;
    PyObject *on_gap = Py_NewRef(self->on_gap), *ms = PyLong_FromLongLong(now_ms);
    PyObject *result = ms != NULL ? PyObject_CallOneArg(on_gap, ms) : NULL;
    Py_DECREF(on_gap);
    Py_XDECREF(ms);
    if (result == NULL)
        return NULL;
    Py_DECREF(result);
    Py_RETURN_NONE;
}

/* One clear RTP packet: taken here, or handed to `slow` before anything is counted. */
PyObject *intake_receive(Intake *self, const unsigned char *d, int length,
                                long long now_ms) {
    RtpScan h;
    Vp8Scan v;
    if (length > self->max_packet || rtp_scan(d, length, &h) < 0)
        return call_slow(self, d, length, now_ms);
    Reception *t = intake_track(self, h.ssrc);
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
    int64_t highest_before = t->highest_ext;
    int accepted = reception_api->on_packet(t, now_ms, h.seq, length);
    if (accepted <= 0) {
        if (accepted < 0)
            return PyErr_NoMemory();
        self->counts[C_DUPLICATE]++;
        Py_RETURN_NONE;
    }
    int opened_gap = highest_before >= 0 && t->highest_ext - highest_before > 1;
    if (payload_length == 0) /* padding only */
        return opened_gap ? tell_gap(self, now_ms) : Py_NewRef(Py_None);
    if (!(t->is_video ? self->gate_video : self->gate_audio)) {
        self->counts[C_CHAIR_MUTED]++;
        return opened_gap ? tell_gap(self, now_ms) : Py_NewRef(Py_None);
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
            p.ext_picture = reception_api->unwrap_picture(t, v.picture_id);
        }
        p.has_descriptor = 1;
        p.descriptor = (Descriptor){v.size, v.picture_id_offset, v.picture_id_bits,
                                    v.tl0picidx_offset};
        uint32_t abs_send_time = (uint32_t)((((unsigned long long)now_ms) << 18) / 1000) & 0xffffff;
        stamp[0] = (unsigned char)(abs_send_time >> 16);
        stamp[1] = (unsigned char)(abs_send_time >> 8);
        stamp[2] = (unsigned char)abs_send_time;
        send_time = stamp;
    } else {
        Py_ssize_t at = 0;
        int size = 0;
        int has_level = self->level_id > 0 &&
                        rtp_find_extension(d, &h, self->level_id, &at, &size) && size >= 1;
        self->level_bits = (self->level_bits << 1) | (uint64_t)has_level;
        if (has_level && ((d[at] & 0x80) || (d[at] & 0x7f) < self->level_floor)) {
            PyObject *args[4] = {PyLong_FromLongLong(now_ms), Py_NewRef(self->pid),
                                 PyLong_FromLong(d[at] & 0x7f), PyBool_FromLong(d[at] & 0x80)};
            failed = call_with(self->call[K_ON_LEVEL], args, 4) < 0;
        } else if (!has_level && self->voice_frame_bytes > 0 &&
                   __builtin_popcountll(self->level_bits) < LACKING_BELOW &&
                   opus_sounds(d + h.payload_start, payload_length, self->voice_frame_bytes)) {
            PyObject *args[4] = {PyLong_FromLongLong(now_ms), Py_NewRef(self->pid),
                                 PyLong_FromLong(self->voice_dbov), Py_NewRef(Py_True)};
            failed = call_with(self->call[K_ON_LEVEL], args, 4) < 0;
        }
    }
    if (!failed) {
        p.payload = PyBytes_FromStringAndSize((const char *)d + h.payload_start, payload_length);
        failed = p.payload == NULL || intake_forward(self, t, &p, now_ms, send_time) < 0;
        Py_XDECREF(p.payload);
    }
    if (!failed && opened_gap) {
        PyObject *told = tell_gap(self, now_ms);
        failed = told == NULL;
        Py_XDECREF(told);
    }
    Py_DECREF(t);
    Py_DECREF(self);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

int intake_open(Intake *intake, const unsigned char *in, Py_ssize_t length,
                       unsigned char *clear) {
    int rtp = length >= 12 + TAG_LENGTH && length <= SEAL_MAX_PACKET && 127 < in[0] &&
              in[0] < 192 && !(192 <= in[1] && in[1] <= 223);
    if (!rtp)
        return -1;
    if (intake->opener != NULL)
        return opener_open((Opener *)intake->opener, in, (int)length, clear);
    if (intake->srtp == NULL)
        return -1;
    uint32_t ssrc;
    memcpy(&ssrc, in + 8, 4);
    int known = 0;
    for (int i = 0; i < intake->n_srtp_ssrcs && !known; i++)
        known = intake->srtp_ssrcs[i] == ssrc;
    if (!known && intake->n_srtp_ssrcs == MAX_TRACKS) {
        intake->counts[C_SSRC_LIMIT]++;
        return -2;
    }
    memcpy(clear, in, (size_t)length); /* libsrtp opens in place: a copy of our own */
    int n = (int)length;
    if (wire_unprotect_rtp(intake->srtp, clear, &n) < 0)
        return -1;
    if (!known)
        intake->srtp_ssrcs[intake->n_srtp_ssrcs++] = ssrc;
    return n;
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
    Py_VISIT(self->on_gap);
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
    if (!PyObject_TypeCheck(arg, reception_api->type)) {
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
    if (!PyArg_ParseTuple(args, "IiO!", &ssrc, &payload_type, reception_api->type, &media))
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
    if ((counts_api = PyCapsule_Import(COUNTS_API_CAPSULE, 0)) == NULL ||
        (reception_api = PyCapsule_Import(RECEPTION_API_CAPSULE, 0)) == NULL)
        return -1;
    if (PyType_Ready(&IntakeType) < 0 || tap_add_to(module) < 0 ||
        PyModule_AddObjectRef(module, "Intake", (PyObject *)&IntakeType) < 0)
        return -1;
    return 0;
}
