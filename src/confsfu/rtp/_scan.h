/* RTP headers and VP8 payload descriptors read in place, without Python objects: shared by
 * confsfu.rtp._fast (which builds the Python objects) and confsfu._wire's intake (which does
 * not). Each scanner takes exactly the input the Python reference parsers accept, or refuses
 * it (-1) and leaves the error to them. */
#ifndef CONFSFU_SCAN_H
#define CONFSFU_SCAN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static inline uint32_t scan_be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* ---- RTP (RFC 3550, RFC 8285 header extensions) ------------------------------------------ */

typedef struct {
    uint32_t timestamp, ssrc;
    int marker, payload_type, seq, csrc_count;
    Py_ssize_t ext_start, ext_end; /* the extension elements (empty when none are readable) */
    int two_byte;                  /* the elements' form (RFC 8285 4.3) */
    Py_ssize_t payload_start, payload_end;
} RtpScan;

/* The extension element at *pos: 1 with its id, offset and length (and *pos moved past it),
 * 0 when there are no more, -1 when the element runs past `end`. */
static inline int rtp_next_extension(const unsigned char *d, Py_ssize_t *pos, Py_ssize_t end,
                                     int two_byte, int *id, Py_ssize_t *at, int *length) {
    while (*pos < end) {
        Py_ssize_t p = *pos;
        if (d[p] == 0) { /* padding between elements */
            *pos = p + 1;
            continue;
        }
        if (two_byte) {
            if (p + 1 >= end)
                return -1;
            *id = d[p];
            *length = d[p + 1];
            p += 2;
        } else {
            *id = d[p] >> 4;
            if (*id == 15)
                return 0; /* reserved: the rest is not read */
            *length = (d[p] & 0x0f) + 1;
            p += 1;
        }
        if (p + *length > end)
            return -1;
        *at = p;
        *pos = p + *length;
        return 1;
    }
    return 0;
}

/* The value of extension element `id`: 1 with its offset and length, 0 when absent. Only for
 * a packet rtp_scan accepted (its elements are known to be well formed). */
static inline int rtp_find_extension(const unsigned char *d, const RtpScan *h, int id,
                                     Py_ssize_t *at, int *length) {
    Py_ssize_t pos = h->ext_start;
    int found_id, found = 0;
    Py_ssize_t found_at;
    int found_length;
    while (rtp_next_extension(d, &pos, h->ext_end, h->two_byte, &found_id, &found_at,
                              &found_length) == 1)
        if (found_id == id) { /* the last one wins, as in a dict */
            found = 1;
            *at = found_at;
            *length = found_length;
        }
    return found;
}

/* 0 and `out` filled, or -1 when the reference parser would refuse the packet. */
static inline int rtp_scan(const unsigned char *d, Py_ssize_t size, RtpScan *out) {
    if (size < 12 || d[0] >> 6 != 2)
        return -1;
    Py_ssize_t pos = 12 + 4 * (d[0] & 0x0f);
    if (pos > size)
        return -1;
    out->ext_start = out->ext_end = pos;
    out->two_byte = 0;
    if (d[0] & 0x10) {
        if (pos + 4 > size)
            return -1;
        int profile = (d[pos] << 8) | d[pos + 1];
        Py_ssize_t end = pos + 4 + 4 * ((d[pos + 2] << 8) | d[pos + 3]);
        if (end > size)
            return -1;
        if (profile == 0xbede || (profile & 0xfff0) == 0x1000) {
            int two_byte = profile != 0xbede, id, length;
            Py_ssize_t at, walk = pos + 4;
            int status;
            while ((status = rtp_next_extension(d, &walk, end, two_byte, &id, &at, &length)) == 1)
                ;
            if (status < 0)
                return -1;
            out->ext_start = pos + 4;
            out->ext_end = end;
            out->two_byte = two_byte;
        }
        pos = end;
    }
    Py_ssize_t payload_end = size;
    if (d[0] & 0x20) {
        int padding = d[size - 1];
        if (padding == 0 || padding > size - pos)
            return -1;
        payload_end = size - padding;
    }
    out->marker = (d[1] & 0x80) != 0;
    out->payload_type = d[1] & 0x7f;
    out->seq = (d[2] << 8) | d[3];
    out->timestamp = scan_be32(d + 4);
    out->ssrc = scan_be32(d + 8);
    out->csrc_count = d[0] & 0x0f;
    out->payload_start = pos;
    out->payload_end = payload_end;
    return 0;
}

/* ---- VP8 payload descriptor (RFC 7741) ---------------------------------------------------- */

typedef struct {
    int size; /* of the descriptor: where the VP8 payload header starts */
    int start, partition, non_reference;
    int has_picture_id, picture_id, picture_id_bits, picture_id_offset;
    int has_tl0picidx, tl0picidx, tl0picidx_offset;
    int has_temporal_id, temporal_id, layer_sync, has_key_index, key_index, tid_offset;
    int keyframe, has_dimensions, width, height;
} Vp8Scan;

/* 0 and `out` filled, or -1 when the reference parser would refuse the payload. */
static inline int vp8_scan(const unsigned char *p, Py_ssize_t size, Vp8Scan *out) {
    memset(out, 0, sizeof *out);
    if (size == 0)
        return -1;
    int b0 = p[0];
    Py_ssize_t pos = 1;
    if (b0 & 0x80) {
        if (size < 2)
            return -1;
        int x = p[1];
        pos = 2;
        if (x & 0x80) {
            if (pos >= size)
                return -1;
            out->picture_id_offset = (int)pos;
            out->has_picture_id = 1;
            if (p[pos] & 0x80) {
                if (pos + 1 >= size)
                    return -1;
                out->picture_id = ((p[pos] & 0x7f) << 8) | p[pos + 1];
                out->picture_id_bits = 15;
                pos += 2;
            } else {
                out->picture_id = p[pos];
                out->picture_id_bits = 7;
                pos += 1;
            }
        }
        if (x & 0x40) {
            if (pos >= size)
                return -1;
            out->tl0picidx_offset = (int)pos;
            out->has_tl0picidx = 1;
            out->tl0picidx = p[pos];
            pos += 1;
        }
        if (x & 0x30) {
            if (pos >= size)
                return -1;
            out->tid_offset = (int)pos;
            if (x & 0x20) {
                out->has_temporal_id = 1;
                out->temporal_id = p[pos] >> 6;
                out->layer_sync = (p[pos] & 0x20) != 0;
            }
            if (x & 0x10) {
                out->has_key_index = 1;
                out->key_index = p[pos] & 0x1f;
            }
            pos += 1;
        }
    }
    if (pos >= size)
        return -1;
    out->size = (int)pos;
    out->start = (b0 & 0x10) != 0;
    out->partition = b0 & 0x07;
    out->non_reference = (b0 & 0x20) != 0;
    if (out->start && out->partition == 0 && !(p[pos] & 0x01)) {
        out->keyframe = 1;
        if (size >= pos + 10 && p[pos + 3] == 0x9d && p[pos + 4] == 0x01 && p[pos + 5] == 0x2a) {
            out->has_dimensions = 1;
            out->width = (p[pos + 6] | (p[pos + 7] << 8)) & 0x3fff;
            out->height = (p[pos + 8] | (p[pos + 9] << 8)) & 0x3fff;
        }
    }
    return 0;
}

#endif
