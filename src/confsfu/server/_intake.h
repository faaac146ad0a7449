/* What _intake.c (the Intake) and _tap.c (its Taps and the pump) share. */
#ifndef CONFSFU_INTAKE_H
#define CONFSFU_INTAKE_H

#include "_wire.h"

typedef struct Intake Intake;
extern PyTypeObject IntakeType;

/* Whether the intake was initialised and not cleared since: it has somewhere to hand packets. */
int intake_ready(const Intake *intake);

/* Whether it has the keys to open SRTP (an Opener or a libsrtp context). */
int intake_has_keys(const Intake *intake);

/* Open one datagram as SRTP-protected RTP into `clear` (SEAL_MAX_PACKET bytes): its length,
 * -1 when it is not RTP the intake can open (STUN, DTLS, RTCP, no keys yet, refused), or -2
 * when it is RTP of an SSRC beyond the connection's limit (dropped, counted as ssrc_limit). */
int intake_open(Intake *intake, const unsigned char *in, Py_ssize_t length, unsigned char *clear);

/* One clear RTP packet of `length` bytes read at `now_ms`: taken (fanned out), or handed to
 * `slow`. None, or NULL with an exception set (a callback's). */
PyObject *intake_receive(Intake *intake, const unsigned char *clear, int length,
                         long long now_ms);

/* fn(*args) for `count` new references (released, even when NULL: then -1). */
int call_with(PyObject *fn, PyObject **args, int count);

/* A new Tap in front of `intake` (_tap.c). */
PyObject *tap_new(Intake *intake, PyObject *fallback);

/* Readies the Tap type and adds `pump` to the module (_tap.c). */
int tap_add_to(PyObject *module);

#endif
