/* What the C files of confsfu.server._wire share: the Wire type and its send arena. */
#ifndef CONFSFU_WIRE_H
#define CONFSFU_WIRE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "forwarding/_slot.h"

enum {
    WIRE_MAX_HEADER = 64, /* bytes of RTP header (with extensions) a Wire can write */
    SLOT_BYTES = 2048,    /* a datagram in the send arena */
    TRAILER_BYTES = 148,  /* SRTP_MAX_SRTCP_TRAILER_LEN: tag, MKI and SRTCP index */
    MAX_PACKET = SLOT_BYTES - TRAILER_BYTES, /* bytes of RTP or RTCP before protection */
    /* An RTP datagram's bytes at most, SRTP's included: within an Ethernet path's 1,500 bytes
     * less IPv6 and UDP headers and a TURN relay's framing (a larger one may be fragmented or
     * lost, and aiortc's receiver closes its transport on one over 1,500 bytes), and above
     * what publishers send (libwebrtc 1,200 bytes of RTP, aiortc 1,300 of payload). */
    MAX_DATAGRAM = 1400,
    SRTP_ROOM = 16, /* the largest tag (AES-GCM's) */
    RTX_ROOM = 2,   /* an RTX resend's original sequence number */
};

typedef struct Route Route;

/* The picture id and TL0PICIDX one slot writes into a VP8 payload descriptor, and where
 * (an offset of 0: that field is left as it is). */
typedef struct {
    uint16_t picture_id_offset, tl0picidx_offset;
    uint16_t picture_id;
    uint8_t picture_id_bits, tl0picidx;
} Patch;

/* A packet the wire sent, kept to answer NACKs: its marker, timestamp, send time and payload
 * as sent (sent again without RTX, the same bytes give the same SRTP packet: an AES-GCM IV is
 * never used for two different packets). */
typedef struct {
    PyObject *payload; /* bytes, shared with every other wire that sent the same packet */
    Patch patch;       /* ... which this wire sent with these descriptor bytes */
    uint32_t timestamp;
    int32_t seq;       /* -1: empty */
    int32_t transport_seq; /* the transport-wide number it went out with, or -1 */
    unsigned char marker, send_time[3];
} SentPacket;

typedef struct {
    PyObject_HEAD
    Route *route;
    unsigned char header[WIRE_MAX_HEADER];
    int header_len;
    int abs_send_time_at; /* where the 3-byte abs-send-time value goes, or 0 */
    unsigned long long packets;
    unsigned long long payload_octets; /* as a Sender Report counts them */
    unsigned long long packet_bytes;   /* whole packets, before SRTP */
    unsigned long long oversized;      /* packets not sent: over MAX_DATAGRAM with SRTP and RTX */
    SentPacket *history;
    uint32_t history_mask;
} Wire;

extern PyTypeObject WireType;

/* Write the wire's header (marker, seq, ts and the 3-byte `send_time`, which may be NULL) in
 * front of `payload` (a bytes object) with `patch` (or NULL) applied to its descriptor,
 * protect it into the send arena and keep it in the history (the payload shared, the patch
 * applied again when it is asked for). The packet's length; 0 when the route is down or SRTP
 * refused it; -2 (counted in `oversized`) when it would not fit MAX_DATAGRAM with SRTP and,
 * resent, RTX; -1 with an exception set when the patch does not fit the payload or the wire
 * was never initialised. */
Py_ssize_t wire_put(Wire *wire, int marker, uint16_t seq, uint32_t ts,
                    const unsigned char *send_time, PyObject *payload, const Patch *patch);

/* What fan_out_packet did: packets and bytes queued, and the slots (lists, or NULL) whose
 * source changed and whose route is down. */
typedef struct {
    long sent;
    long long bytes;
    PyObject *switched, *unrouted;
} FanResult;

/* Queue `p` on every (slot, forwarder, wire) of the tuple `entries` whose forwarder forwards it
 * (`stamp`: the 3-byte abs-send-time, or NULL). 0 with `r` filled (its lists owned by the
 * caller), or -1 with an exception set. */
int fan_out_packet(PyObject *entries, const Packet *p, long long now_ms,
                   const unsigned char *stamp, FanResult *r);

/* libsrtp's srtp_unprotect with the context `srtp`, in place: 0, or -1 when it refuses the
 * packet (or set_protect was never called). In _route.c. */
int wire_unprotect_rtp(void *srtp, unsigned char *packet, int *length);

/* 1 when packets wait in the send arena and nobody was told to flush since the last flush():
 * the caller is now that one. */
int wire_flush_wanted(void);

/* Add fan_out (_fanout.c); Intake, Tap and pump (_intake.c, _tap.c); Sealer, Opener and
 * sealing_available (_seal.c) to the module. */
int fan_out_add_to(PyObject *module);
int intake_add_to(PyObject *module);
int seal_add_to(PyObject *module);

#endif
