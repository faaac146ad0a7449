/* Reading a confsfu.forwarding.source_packet.SourcePacket and a VP8 descriptor into the C
 * structs of _slot.h: what _source_packet.c gives _slot.c (and, through the C API, the hot path). */
#ifndef CONFSFU_SOURCE_PACKET_H
#define CONFSFU_SOURCE_PACKET_H

#include "_slot.h"

/* Interns the attribute names read: 0, or -1 with an exception set. Call once, first. */
int packet_names_intern(void);

/* Read an SourcePacket into `p`, which holds its attributes until packet_release: 0, or -1
 * with an exception set (call packet_release either way). */
int packet_from(PyObject *inbound, Packet *p);

void packet_release(Packet *p);

/* A Vp8Descriptor's offsets into `d`: 0, or -1 with an exception set. */
int descriptor_from(PyObject *vp8, Descriptor *d);

#endif
