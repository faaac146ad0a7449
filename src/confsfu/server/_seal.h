/* confsfu.server._wire's Sealer and Opener (_seal.c): SRTP AEAD AES-GCM for a connection's RTP. */
#ifndef CONFSFU_SEAL_H
#define CONFSFU_SEAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>

enum { SEAL_MAX_PACKET = 2048 }; /* bytes of RTP a Sealer's own `seal` takes */

typedef struct Sealer Sealer;
typedef struct Opener Opener;
extern PyTypeObject SealerType, OpenerType;

/* Whether OpenSSL's libcrypto is loaded (it is tried once). */
int seal_available(void);

/* Whether __init__ made its cipher context (else it refuses every packet). */
int sealer_ready(const Sealer *self);
int opener_ready(const Opener *self);

/* Protect the RTP packet of `*length` bytes in place: 16 bytes of tag are written after it (the
 * buffer must have room) and `*length` grows by 16. `*highest` is its stream's highest packet
 * index so far (0 before the first packet), moved on by the packet. -1 when the bytes are not
 * RTP, the packet is too old for its index to be known, or OpenSSL fails (the packet is then
 * counted as refused). */
int sealer_seal(Sealer *self, uint64_t *highest, unsigned char *packet, int *length);

/* Authenticate and decrypt the SRTP packet `in` into `out` (room for `length` - 16 bytes): the
 * clear length, or -1 when it is not SRTP, is replayed or too old, or fails authentication. */
int opener_open(Opener *self, const unsigned char *in, int length, unsigned char *out);

#endif
