/* Opus, read without decoding (RFC 6716's TOC byte), for the C hot path: the same reading as
 * confsfu.codecs.opus. */
#ifndef CONFSFU_OPUS_H
#define CONFSFU_OPUS_H

#include <Python.h>

/* Whether an Opus packet holds sound: at least `frame_bytes` per frame, as
 * confsfu.conference.voice_activity judges it (its TOC read as confsfu.codecs.opus does). */
static inline int opus_sounds(const unsigned char *payload, Py_ssize_t length, int frame_bytes) {
    static const unsigned char frame_quanta[32] = {4, 8, 16, 24, 4, 8, 16, 24, 4, 8, 16,
                                                   24, 4, 8, 4, 8, 1, 2, 4, 8, 1, 2,
                                                   4, 8, 1, 2, 4, 8, 1, 2, 4, 8};
    if (length < 1)
        return 0;
    int code = payload[0] & 3, frames;
    if (code == 0)
        frames = 1;
    else if (code < 3)
        frames = 2;
    else if (length < 2)
        return 0;
    else
        frames = payload[1] & 0x3f;
    int quanta = frame_quanta[payload[0] >> 3] * frames;
    return quanta > 0 && quanta <= 48 && length >= (Py_ssize_t)frame_bytes * frames;
}

#endif
