/* confsfu.server._wire's Sealer and Opener (_seal.c): SRTP AEAD AES-GCM for a connection's RTP. */
#ifndef CONFSFU_SEAL_H
#define CONFSFU_SEAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>

enum { SEAL_MAX_PACKET = 2048 }; /* bytes of RTP a Sealer's own `seal` takes */

enum { SENT_WINDOW = 1024 }; /* indices behind a stream's highest that can still be sent */

/* One outgoing stream's SRTP packet indices: the highest protected and, for the SENT_WINDOW
 * indices up to it, a fingerprint of the packet protected with each (8 bytes of its tag; 0:
 * none), so that no index ever protects two different packets: the same IV with another
 * plaintext would give away both plaintexts' XOR and, for GCM, the authentication key. A
 * byte-identical packet (a retransmission without RTX) gives the same ciphertext and tag. */
typedef struct {
    uint64_t highest; /* 0 before the first packet */
    uint64_t *fingerprints; /* SENT_WINDOW of them, allocated at the first packet */
    unsigned long long repeats; /* packets refused: their index had protected another */
} SentIndices;

/* The index (RFC 3711 3.3.1) of the packet with sequence number `seq` and how far it is ahead
 * of the highest; -1 when it is SENT_WINDOW or more behind. */
int sent_index(const SentIndices *s, uint16_t seq, uint64_t *index, int64_t *ahead);

/* Note that index `index` (`ahead` of the highest) protected a packet whose tag ends (or
 * starts, for GCM) with `fingerprint`; -1 when that index protected a different packet before
 * (the protected bytes must not be sent) or memory ran out. */
int sent_record(SentIndices *s, uint64_t index, int64_t ahead, uint64_t fingerprint);

void sent_free(SentIndices *s);

typedef struct Sealer Sealer;
typedef struct Opener Opener;
extern PyTypeObject SealerType, OpenerType;

/* Whether OpenSSL's libcrypto is loaded (it is tried once). */
int seal_available(void);

/* Whether __init__ made its cipher context (else it refuses every packet). */
int sealer_ready(const Sealer *self);
int opener_ready(const Opener *self);

/* Protect the RTP packet of `*length` bytes in place: 16 bytes of tag are written after it (the
 * buffer must have room) and `*length` grows by 16. `stream` is its stream's indices, moved on
 * by the packet. -1 when the bytes are not RTP, the packet is too old for its index to be
 * known, its index protected a different packet before, or OpenSSL fails (the packet is then
 * counted as refused and must not be sent). */
int sealer_seal(Sealer *self, SentIndices *stream, unsigned char *packet, int *length);

/* Authenticate and decrypt the SRTP packet `in` into `out` (room for `length` - 16 bytes): the
 * clear length, or -1 when it is not SRTP, is replayed or too old, or fails authentication. */
int opener_open(Opener *self, const unsigned char *in, int length, unsigned char *out);

#endif
