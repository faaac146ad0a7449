/* confsfu.server._wire's Route (_route.c): where one connection's packets go, for the Wire and
 * its send arena (_wire.c). */
#ifndef CONFSFU_ROUTE_H
#define CONFSFU_ROUTE_H

#include "_seal.h"
#include "_wire.h"

#include <string.h>
#include <sys/socket.h>

enum { ROUTE_STREAMS = 128 }; /* outgoing SSRCs a route can give an SRTP context of their own */
enum { TRANSPORT_LOG = 4096 }; /* transport-wide sequence numbers whose send a route remembers */

/* One packet stamped with a transport-wide sequence number: when it went out and its size. */
typedef struct {
    int64_t send_us; /* CLOCK_MONOTONIC (Python's time.monotonic_ns() // 1000) */
    uint32_t size;   /* bytes of RTP, before SRTP */
    int32_t seq;     /* -1: empty */
} TransportSent;

/* libsrtp's srtp_(un)protect(_rtcp) (pylibsrtp's copy, handed over by set_protect). */
typedef int (*protect_fn)(void *ctx, void *packet, int *length);
extern protect_fn protect_rtp, protect_rtcp, unprotect_rtp, unprotect_rtcp;

struct Route {
    PyObject_HEAD
    void *srtp;       /* srtp_t of the connection's sending side; NULL while there is no route */
    PyObject *owner;  /* keeps `srtp` alive (the pylibsrtp Session) */
    int fd;           /* our own dup of the ICE socket, or -1 */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    PyObject *sendto; /* a relayed route: sendto(data, addr) in Python */
    PyObject *py_addr;
    unsigned long long srtp_errors;
    unsigned long long send_errors;
    unsigned long long oversized;
    int max_datagram; /* bytes of SRTP datagram at most (MAX_DATAGRAM) */
    /* SSRCs whose RTP has a protection of its own: a Sealer, or a libsrtp context (libsrtp
     * finds a stream by walking a linked list of the session's streams, once per packet). They
     * belong to the connection's keys, not to its path, so they outlive route_reset. */
    int streams, sealed;
    struct {
        uint32_t ssrc; /* as on the wire */
        void *srtp;
        Sealer *sealer; /* or NULL: libsrtp's `srtp` */
        SentIndices sent; /* the SRTP indices this SSRC has used */
    } stream[ROUTE_STREAMS];
    PyObject *stream_owners; /* a list keeping their Sealers or pylibsrtp Sessions alive */
    /* transport-cc: every RTP packet carrying the extension `transport_cc_id` (0: none) gets
     * the connection's next transport-wide sequence number, and its send is logged. */
    int transport_cc_id;
    uint16_t transport_seq;      /* the next one */
    int32_t last_transport_seq;  /* the last stamped (-1: the last packet carried none) */
    unsigned long long stamped;
    TransportSent *transport_log; /* TRANSPORT_LOG entries by seq, or NULL */
};

extern PyTypeObject RouteType;

/* Whether packets can be protected and sent on the route now. */
static inline int route_up(const Route *self) { return self->srtp != NULL && protect_rtp != NULL; }

/* Protect with a libsrtp context of the SSRC's own, which never protects two different
 * packets with one index either (the authentication tag is the fingerprint). */
int route_protect_dedicated(Route *self, int stream, unsigned char *packet, int *length);

/* Write the route's next transport-wide sequence number into the packet's transport-cc
 * extension element, if it has one (else last_transport_seq is -1). */
void route_stamp(Route *self, unsigned char *packet, int length);

/* The stamp of a packet that was not sent after all: its number is taken back, and its log
 * entry with it. */
void route_unstamp(Route *self);

static inline int route_protect_rtp_as_is(Route *self, unsigned char *packet, int *length);

/* Protect the RTP packet in place (stamped first when the route does transport-cc), with its
 * SSRC's own protection or the route's context; 0 on success, else counted in srtp_errors.
 * The route must be up. */
static inline int route_protect_rtp(Route *self, unsigned char *packet, int *length) {
    if (self->transport_cc_id == 0)
        return route_protect_rtp_as_is(self, packet, length);
    route_stamp(self, packet, *length);
    if (route_protect_rtp_as_is(self, packet, length) == 0)
        return 0;
    route_unstamp(self);
    return -1;
}

/* route_protect_rtp without a stamp: a packet resent byte for byte. */
static inline int route_protect_rtp_as_is(Route *self, unsigned char *packet, int *length) {
    if (*length >= 12) {
        uint32_t ssrc;
        memcpy(&ssrc, packet + 8, 4);
        for (int i = 0; i < self->streams; i++)
            if (self->stream[i].ssrc == ssrc) {
                if (self->stream[i].sealer != NULL) {
                    if (sealer_seal(self->stream[i].sealer, &self->stream[i].sent, packet,
                                    length) == 0)
                        return 0;
                    self->srtp_errors++;
                    return -1;
                }
                return route_protect_dedicated(self, i, packet, length);
            }
    }
    if (protect_rtp(self->srtp, packet, length) == 0)
        return 0;
    self->srtp_errors++;
    return -1;
}

/* Send one protected datagram on the route now (a relayed route's sendto may run Python);
 * 0 on success, else counted in send_errors. */
int route_transmit(Route *self, const unsigned char *data, int length);

/* Adds Route, set_protect and unprotect to the module. */
int route_add_to(PyObject *module);

#endif
