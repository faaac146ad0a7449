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
 * clock). Its Python type (construction, tracks, counters) is _intake_type.c.
 */
#include "_intake_type.h"
#include "codecs/_opus.h"
#include "_seal.h"
#include "bandwidth/_counts.h"
#include "forwarding/_reception.h"
#include "rtp/_scan.h"

#include <stddef.h>
#include <string.h>

const CountsApi *intake_counts_api;
const ReceptionApi *intake_reception_api;
const char *const intake_count_names[C_COUNT] = {"packets_in",  "bytes_in",    "packets_out",
                                                 "bytes_out",   "rtx_in",      "duplicate",
                                                 "chair_muted", "rtx_padding", "ssrc_limit"};
const char *const intake_callable_names[K_COUNT] = {"slow", "on_level", "on_keyframe",
                                                    "after_fan_out", "schedule_flush"};

int intake_ready(const Intake *self) { return self->call[K_SLOW] != NULL; }

int intake_has_keys(const Intake *self) { return self->opener != NULL || self->srtp != NULL; }

Reception *intake_track(Intake *self, uint32_t ssrc) {
    for (int i = 0; i < self->n_tracks; i++)
        if (self->tracks[i]->ssrc == ssrc)
            return self->tracks[i];
    return NULL;
}

Repair *intake_repair(Intake *self, uint32_t ssrc) {
    for (int i = 0; i < self->n_repairs; i++)
        if (self->repairs[i].ssrc == ssrc)
            return &self->repairs[i];
    return NULL;
}

PyObject *call_slow(Intake *self, const unsigned char *clear, int length, long long now_ms) {
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

/* The packet to another worker, if one needs its layer (`relay`): as it arrived, or its RTX
 * unwrapped (the original's sequence number, the track's SSRC); its padding left out (a
 * padding-only packet goes as a bare header). */
static int relay_packet(Intake *self, Reception *t, const unsigned char *d, const RtpScan *h,
                        int repair) {
    if (self->relay == NULL || !PyDict_Check(self->relay) || PyDict_GET_SIZE(self->relay) == 0)
        return 0;
    PyObject *to = PyDict_GetItemWithError(self->relay, t->key);
    if (to == NULL)
        return PyErr_Occurred() ? -1 : 0;
    Py_ssize_t header = repair ? h->payload_start - 2 : h->payload_start;
    Py_ssize_t payload = h->payload_end - h->payload_start;
    PyObject *packet = PyBytes_FromStringAndSize(NULL, header + payload);
    if (packet == NULL)
        return -1;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(packet);
    memcpy(out, d, (size_t)header);
    memcpy(out + header, d + h->payload_start, (size_t)payload);
    out[0] &= 0xdf; /* no padding */
    out[2] = (unsigned char)(h->seq >> 8);
    out[3] = (unsigned char)h->seq;
    out[8] = (unsigned char)(t->ssrc >> 24);
    out[9] = (unsigned char)(t->ssrc >> 16);
    out[10] = (unsigned char)(t->ssrc >> 8);
    out[11] = (unsigned char)t->ssrc;
    Py_INCREF(to);
    PyObject *result = PyObject_CallOneArg(to, packet);
    Py_DECREF(to);
    Py_DECREF(packet);
    Py_XDECREF(result);
    return result != NULL ? 0 : -1;
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
    int accepted = intake_reception_api->on_packet(t, now_ms, h.seq, length);
    if (accepted <= 0) {
        if (accepted < 0)
            return PyErr_NoMemory();
        self->counts[C_DUPLICATE]++;
        Py_RETURN_NONE;
    }
    int opened_gap = highest_before >= 0 && t->highest_ext - highest_before > 1;
    if (payload_length == 0) { /* padding only: relayed bare, so the other side numbers alike */
        if (relay_packet(self, t, d, &h, repair) < 0)
            return NULL;
        return opened_gap ? tell_gap(self, now_ms) : Py_NewRef(Py_None);
    }
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
    int failed = relay_packet(self, t, d, &h, repair) < 0;
    if (!failed && t->is_video) {
        if (v.keyframe) {
            PyObject *result = PyObject_CallOneArg(self->call[K_ON_KEYFRAME], t->key);
            failed = result == NULL;
            Py_XDECREF(result);
        }
        if (t->meter != NULL) /* a temporal layer above the meter's 3 is not measured */
            intake_counts_api->add((LayerCounts *)t->meter, now_ms, t->layer,
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
            p.ext_picture = intake_reception_api->unwrap_picture(t, v.picture_id);
        }
        p.has_descriptor = 1;
        p.descriptor = (Descriptor){v.size, v.picture_id_offset, v.picture_id_bits,
                                    v.tl0picidx_offset};
        uint32_t abs_send_time = (uint32_t)((((unsigned long long)now_ms) << 18) / 1000) & 0xffffff;
        stamp[0] = (unsigned char)(abs_send_time >> 16);
        stamp[1] = (unsigned char)(abs_send_time >> 8);
        stamp[2] = (unsigned char)abs_send_time;
        send_time = stamp;
    } else if (!failed) {
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
