/* What the Intake's packet path (_intake.c) and its Python type (_intake_type.c) share: the
 * struct, its counters and callables. Private to those two files. */
#ifndef CONFSFU_INTAKE_TYPE_H
#define CONFSFU_INTAKE_TYPE_H

#include "_intake.h"
#include "bandwidth/_counts.h"
#include "forwarding/_reception.h"

#include <stdint.h>

enum { MAX_TRACKS = 32, TAG_LENGTH = 16 };
enum { LACKING_BELOW = 32 }; /* of 64: confsfu.conference.voice_activity's */

extern const CountsApi *intake_counts_api;       /* confsfu.bandwidth._counts */
extern const ReceptionApi *intake_reception_api; /* confsfu.forwarding._reception */

enum {
    C_PACKETS_IN, C_BYTES_IN, C_PACKETS_OUT, C_BYTES_OUT, C_RTX_IN, /* counters */
    C_DUPLICATE, C_CHAIR_MUTED, C_RTX_PADDING, C_SSRC_LIMIT, /* drops */
    C_COUNT
};
extern const char *const intake_count_names[C_COUNT];

/* An RTX stream (RFC 4588) repairing a track: its packets carry the original sequence number
 * in front of the original payload. */
typedef struct {
    uint32_t ssrc;
    int payload_type;
    Reception *media;
} Repair;

/* Its callables, in the order of `callable_names`. */
enum { K_SLOW, K_ON_LEVEL, K_ON_KEYFRAME, K_AFTER_FAN_OUT, K_SCHEDULE_FLUSH, K_COUNT };
extern const char *const intake_callable_names[K_COUNT];

struct Intake {
    PyObject_HEAD
    PyObject *call[K_COUNT];
    PyObject *pid;      /* str: on_level's second argument */
    PyObject *on_gap;   /* on_gap(now_ms) when a packet leaves a gap, or NULL / None */
    PyObject *relay;    /* dict: layer key -> relay(packet) for layers other workers need */
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

/* The track / repair of `ssrc`, or NULL. */
Reception *intake_track(Intake *self, uint32_t ssrc);
Repair *intake_repair(Intake *self, uint32_t ssrc);

/* slow(clear, now_ms): a new reference, or NULL with an exception set. */
PyObject *call_slow(Intake *self, const unsigned char *clear, int length, long long now_ms);

#endif
