/* confsfu.forwarding._reception's C API, for the intake in confsfu.server._wire (via a capsule):
 * one incoming media SSRC's receive statistics, sans-IO (time is an argument). */
#ifndef CONFSFU_RECEPTION_H
#define CONFSFU_RECEPTION_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define RECEPTION_API_CAPSULE "confsfu.forwarding._reception._C_API"

typedef struct {
    int64_t ext, first_ms;
    int sent;
} Missing;

/* One incoming media SSRC: sequence numbers, loss and the NACKs it is owed, its VP8 picture ids
 * unwrapped, and the layer it carries (set by `route`). The intake reads `ssrc`, `key`, `meter`,
 * `is_video`, `layer` and `last_ext` directly and changes the rest only through the API. */
typedef struct {
    PyObject_HEAD
    uint32_t ssrc;
    int initialised;
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
} Reception;

typedef struct {
    PyTypeObject *type; /* Reception */
    /* Count a packet: 1 when it is new, 0 when it is a duplicate or too old to matter, -1 (no
     * exception set) when memory ran out. */
    int (*on_packet)(Reception *r, long long now_ms, int seq, Py_ssize_t size);
    /* The 15-bit VP8 picture id `value` on an unbounded number. */
    long long (*unwrap_picture)(Reception *r, long long value);
} ReceptionApi;

#endif
