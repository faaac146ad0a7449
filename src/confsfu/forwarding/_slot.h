/* confsfu.forwarding._slot's C API, for the hot path in confsfu._wire (via a capsule). */
#ifndef CONFSFU_SLOT_H
#define CONFSFU_SLOT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define SLOT_API_CAPSULE "confsfu.forwarding._slot._C_API"
#define PACKET_FIELDS 14 /* attributes of an SourcePacket that a Packet holds */

/* Where a VP8 payload descriptor keeps its picture id and TL0PICIDX. */
typedef struct {
    int size, picture_id_offset, picture_id_bits, tl0picidx_offset;
} Descriptor;

/* One incoming packet (a confsfu.forwarding.source_packet.SourcePacket), as the forwarders read it. */
typedef struct {
    PyObject *held[PACKET_FIELDS]; /* the attributes read, owned; see packet_release */
    int n_held;
    PyObject *key;     /* the layer key (an interned confsfu.ids.LayerKey) */
    PyObject *payload; /* bytes */
    PyObject *vp8;     /* the Vp8Descriptor, or NULL */
    long long ext_seq, ext_picture;
    uint32_t timestamp;
    int seq, marker, keyframe, starts_frame, layer_sync;
    int temporal_id, picture_id, tl0picidx; /* -1: absent */
    int has_ext_picture;
    int has_descriptor; /* `descriptor` is read (the intake's packets, which have no `vp8`) */
    Descriptor descriptor;
} Packet;

/* The numbers one slot sends a packet with. */
typedef struct {
    uint16_t seq;
    uint32_t ts;
    int picture_id, tl0picidx; /* -1: the packet has none */
} Numbers;

enum {
    DECIDE_FORWARD = 1,  /* send it, with the numbers given */
    DECIDE_SWITCHED = 2, /* the slot's source changed */
    DECIDE_REWRITE = 4,  /* the payload's descriptor needs the slot's picture id / TL0PICIDX */
};

typedef struct {
    PyTypeObject *forwarder_type;
    /* 0, or -1 with an exception set; call packet_release either way. */
    int (*packet_from)(PyObject *inbound, Packet *p);
    void (*packet_release)(Packet *p);
    /* DECIDE_* flags for one slot's forwarder (of forwarder_type). */
    int (*decide)(PyObject *forwarder, long long now_ms, const Packet *p, Numbers *out);
    int (*descriptor_from)(PyObject *vp8, Descriptor *d);
} SlotApi;

#endif
