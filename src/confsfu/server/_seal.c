/* confsfu.server._wire's Sealer and Opener: SRTP protection of a connection's outgoing RTP, and
 * authentication and decryption of its incoming RTP, with AEAD AES-GCM (RFC 7714), the profile
 * WebRTC peers (browsers, aiortc) negotiate first. One Sealer (one cipher context) serves all of
 * a connection's outgoing streams, each keeping its packet index; an Opener keeps each incoming
 * stream's index and replay window (1024 packets, as aiortc sets libsrtp's).
 *
 * The per-packet work is OpenSSL's (EVP, AES-NI); everything around it is a few lines here:
 * the packet index (RFC 3711 section 3.3.1, as libsrtp estimates it), the IV, the tag and the
 * replay window. libsrtp does the same with a stream lookup, a shifted bit vector and key-usage
 * bookkeeping per packet, which cost more than the cipher. The session key and salt come from
 * the DTLS keying material through confsfu.server.srtp_keys. libcrypto is loaded at run time
 * (Python itself links it): no OpenSSL headers are needed to build.
 */
#include "_seal.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

enum {
    SALT_BYTES = 12,
    TAG_BYTES = 16,
    CTRL_GET_TAG = 0x10, /* EVP_CTRL_AEAD_GET_TAG */
    CTRL_SET_TAG = 0x11, /* EVP_CTRL_AEAD_SET_TAG */
    WINDOW = 1024,       /* how far behind its stream's newest index a packet may still be */
    SEQ_MEDIAN = 1 << 15,
};

/* The EVP functions used here, with OpenSSL's (1.1 and 3) signatures. */
static struct {
    void *(*ctx_new)(void);
    void (*ctx_free)(void *);
    const void *(*aes_128_gcm)(void);
    const void *(*aes_256_gcm)(void);
    int (*init)(void *, const void *, void *, const unsigned char *, const unsigned char *);
    int (*update)(void *, unsigned char *, int *, const unsigned char *, int);
    int (*final)(void *, unsigned char *, int *);
    int (*ctrl)(void *, int, int, void *);
    int (*decrypt_init)(void *, const void *, void *, const unsigned char *,
                        const unsigned char *);
    int (*decrypt_update)(void *, unsigned char *, int *, const unsigned char *, int);
    int (*decrypt_final)(void *, unsigned char *, int *);
} evp;
static int evp_state = 0; /* 0: not tried, 1: loaded, -1: unavailable */

int seal_available(void) {
    if (evp_state != 0)
        return evp_state > 0;
    evp_state = -1;
    void *lib = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL)
        lib = dlopen("libcrypto.so", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL)
        return 0;
    const char *names[] = {"EVP_CIPHER_CTX_new",  "EVP_CIPHER_CTX_free", "EVP_aes_128_gcm",
                           "EVP_aes_256_gcm",     "EVP_EncryptInit_ex",  "EVP_EncryptUpdate",
                           "EVP_EncryptFinal_ex", "EVP_CIPHER_CTX_ctrl", "EVP_DecryptInit_ex",
                           "EVP_DecryptUpdate",   "EVP_DecryptFinal_ex"};
    enum { SYMBOLS = sizeof names / sizeof names[0] };
    void *symbols[SYMBOLS];
    for (int i = 0; i < SYMBOLS; i++)
        if ((symbols[i] = dlsym(lib, names[i])) == NULL)
            return 0; /* the library stays loaded: harmless */
    memcpy(&evp.ctx_new, &symbols[0], sizeof(void *));
    memcpy(&evp.ctx_free, &symbols[1], sizeof(void *));
    memcpy(&evp.aes_128_gcm, &symbols[2], sizeof(void *));
    memcpy(&evp.aes_256_gcm, &symbols[3], sizeof(void *));
    memcpy(&evp.init, &symbols[4], sizeof(void *));
    memcpy(&evp.update, &symbols[5], sizeof(void *));
    memcpy(&evp.final, &symbols[6], sizeof(void *));
    memcpy(&evp.ctrl, &symbols[7], sizeof(void *));
    memcpy(&evp.decrypt_init, &symbols[8], sizeof(void *));
    memcpy(&evp.decrypt_update, &symbols[9], sizeof(void *));
    memcpy(&evp.decrypt_final, &symbols[10], sizeof(void *));
    evp_state = 1;
    return 1;
}

struct Sealer {
    PyObject_HEAD
    void *ctx; /* EVP_CIPHER_CTX with the session key set */
    unsigned char salt[SALT_BYTES];
    SentIndices own; /* the stream of `seal` from Python */
    unsigned long long refused;
};

/* The index of a packet with sequence number `seq` and how far it is ahead of the highest
 * (RFC 3711 3.3.1; near the start the ROC is taken as 0, as libsrtp does). */
static int64_t estimate(uint64_t highest, uint16_t seq, uint64_t *index) {
    if (highest <= SEQ_MEDIAN) {
        *index = seq;
        return (int64_t)seq - (int64_t)highest;
    }
    uint32_t roc = (uint32_t)(highest >> 16);
    int local = (int)(highest & 0xffff);
    int64_t delta = (int64_t)seq - local;
    if (local < SEQ_MEDIAN && seq - local > SEQ_MEDIAN) {
        roc--;
        delta -= 1 << 16;
    } else if (local >= SEQ_MEDIAN && local - SEQ_MEDIAN > seq) {
        roc++;
        delta += 1 << 16;
    }
    *index = ((uint64_t)roc << 16) | seq;
    return delta;
}

/* ---- the indices sent ------------------------------------------------------------------ */

int sent_index(const SentIndices *s, uint16_t seq, uint64_t *index, int64_t *ahead) {
    *ahead = estimate(s->highest, seq, index);
    return *ahead <= -SENT_WINDOW ? -1 : 0;
}

int sent_record(SentIndices *s, uint64_t index, int64_t ahead, uint64_t fingerprint) {
    if (s->fingerprints == NULL &&
        (s->fingerprints = calloc(SENT_WINDOW, sizeof *s->fingerprints)) == NULL)
        return -1;
    fingerprint |= fingerprint == 0; /* 0 means "none" */
    uint64_t *at = &s->fingerprints[index % SENT_WINDOW];
    if (ahead <= 0) {
        if (*at != 0 && *at != fingerprint) {
            s->repeats++;
            return -1;
        }
        *at = fingerprint;
        return 0;
    }
    /* A new highest: the places of the indices skipped (or all, after a long jump) are free. */
    if (ahead >= SENT_WINDOW)
        memset(s->fingerprints, 0, SENT_WINDOW * sizeof *s->fingerprints);
    else
        for (uint64_t i = s->highest + 1; i < index; i++)
            s->fingerprints[i % SENT_WINDOW] = 0;
    *at = fingerprint;
    s->highest = index;
    return 0;
}

void sent_free(SentIndices *s) {
    free(s->fingerprints);
    s->fingerprints = NULL;
}

/* Bytes of RTP header (the AEAD's associated data) in `packet`, or -1. */
static int header_length(const unsigned char *packet, int length) {
    if (length < 12 || (packet[0] >> 6) != 2)
        return -1;
    int at = 12 + 4 * (packet[0] & 0x0f);
    if (packet[0] & 0x10) {
        if (at + 4 > length)
            return -1;
        at += 4 + 4 * ((packet[at + 2] << 8) | packet[at + 3]);
    }
    return at <= length ? at : -1;
}

/* The IV of the packet with index `index`: (00 00 || SSRC || ROC || SEQ) XOR salt (RFC 7714
 * 8.1). */
static void make_iv(const unsigned char *salt, const unsigned char *packet, uint64_t index,
                    unsigned char *iv) {
    uint32_t roc = (uint32_t)(index >> 16);
    iv[0] = iv[1] = 0;
    memcpy(iv + 2, packet + 8, 4);
    iv[6] = (unsigned char)(roc >> 24);
    iv[7] = (unsigned char)(roc >> 16);
    iv[8] = (unsigned char)(roc >> 8);
    iv[9] = (unsigned char)roc;
    iv[10] = packet[2];
    iv[11] = packet[3];
    for (int i = 0; i < SALT_BYTES; i++)
        iv[i] ^= salt[i];
}

int sealer_ready(const Sealer *self) { return self->ctx != NULL; }

int sealer_seal(Sealer *self, SentIndices *stream, unsigned char *packet, int *length) {
    int header = header_length(packet, *length);
    if (header < 0 || self->ctx == NULL)
        goto refuse;
    uint16_t seq = (uint16_t)((packet[2] << 8) | packet[3]);
    uint64_t index;
    int64_t ahead;
    if (sent_index(stream, seq, &index, &ahead) != 0)
        goto refuse;
    unsigned char iv[SALT_BYTES];
    make_iv(self->salt, packet, index, iv);
    int out, body = *length - header;
    if (!evp.init(self->ctx, NULL, NULL, NULL, iv) ||
        !evp.update(self->ctx, NULL, &out, packet, header) ||
        (body > 0 && !evp.update(self->ctx, packet + header, &out, packet + header, body)) ||
        !evp.final(self->ctx, packet + *length, &out) ||
        !evp.ctrl(self->ctx, CTRL_GET_TAG, TAG_BYTES, packet + *length))
        goto refuse;
    uint64_t fingerprint;
    memcpy(&fingerprint, packet + *length, sizeof fingerprint);
    if (sent_record(stream, index, ahead, fingerprint) != 0)
        goto refuse;
    *length += TAG_BYTES;
    return 0;
refuse:
    self->refused++;
    return -1;
}

/* ---- the Python types ----------------------------------------------------------------- */

/* Parse (key, salt) and make an AES-GCM context for encrypting or decrypting with the key;
 * NULL with an exception set. */
static void *gcm_context(PyObject *args, PyObject *kwds, int encrypt, unsigned char *salt_out) {
    static char *keywords[] = {"key", "salt", NULL};
    Py_buffer key, salt;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*y*", keywords, &key, &salt))
        return NULL;
    void *ctx = NULL;
    if (!seal_available()) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL's libcrypto could not be loaded");
    } else if ((key.len != 16 && key.len != 32) || salt.len != SALT_BYTES) {
        PyErr_SetString(PyExc_ValueError, "AES-GCM takes a 16- or 32-byte key and a 12-byte salt");
    } else if ((ctx = evp.ctx_new()) == NULL) {
        PyErr_NoMemory();
    } else {
        const void *cipher = key.len == 16 ? evp.aes_128_gcm() : evp.aes_256_gcm();
        if (!(encrypt ? evp.init : evp.decrypt_init)(ctx, cipher, NULL, key.buf, NULL)) {
            PyErr_SetString(PyExc_RuntimeError, "OpenSSL refused the AES-GCM key");
            evp.ctx_free(ctx);
            ctx = NULL;
        } else {
            memcpy(salt_out, salt.buf, SALT_BYTES);
        }
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&salt);
    return ctx;
}

static void sealer_dealloc(Sealer *self) {
    if (self->ctx != NULL)
        evp.ctx_free(self->ctx);
    sent_free(&self->own);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int sealer_init(Sealer *self, PyObject *args, PyObject *kwds) {
    if (self->ctx != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Sealer is initialised once");
        return -1;
    }
    self->ctx = gcm_context(args, kwds, 1, self->salt);
    return self->ctx != NULL ? 0 : -1;
}

/* seal(packet) -> the protected packet, or None when it is refused */
static PyObject *sealer_seal_py(Sealer *self, PyObject *arg) {
    unsigned char buffer[SEAL_MAX_PACKET + TAG_BYTES];
    Py_buffer packet;
    if (self->ctx == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the Sealer was never initialised");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &packet, PyBUF_SIMPLE) < 0)
        return NULL;
    int length = (int)packet.len;
    int fits = packet.len <= SEAL_MAX_PACKET;
    if (fits)
        memcpy(buffer, packet.buf, packet.len);
    PyBuffer_Release(&packet);
    if (!fits) {
        PyErr_Format(PyExc_ValueError, "a packet exceeds %d bytes", SEAL_MAX_PACKET);
        return NULL;
    }
    if (sealer_seal(self, &self->own, buffer, &length) != 0)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)buffer, length);
}

static PyMethodDef sealer_methods[] = {
    {"seal", (PyCFunction)sealer_seal_py, METH_O,
     "seal(packet) -> the SRTP packet (header, ciphertext, 16-byte tag), or None when it is"
     " not RTP, more than 1023 packets older than the newest sealed, or its index protected"
     " a different packet before. The packets given to `seal` are one stream (a Route keeps"
     " each SSRC's indices itself)."},
    {NULL},
};

static PyMemberDef sealer_members[] = {
    {"refused", T_ULONGLONG, offsetof(Sealer, refused), READONLY, "packets refused"},
    {"repeats", T_ULONGLONG, offsetof(Sealer, own.repeats), READONLY,
     "packets of `seal` refused because their index protected a different packet before"},
    {NULL},
};

PyTypeObject SealerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "confsfu.server._wire.Sealer",
    .tp_doc = "Sealer(key, salt): SRTP AEAD AES-GCM protection of a connection's outgoing RTP,"
              " with the session key (16 or 32 bytes) and session salt (12 bytes).",
    .tp_basicsize = sizeof(Sealer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)sealer_init,
    .tp_dealloc = (destructor)sealer_dealloc,
    .tp_methods = sealer_methods,
    .tp_members = sealer_members,
};

/* ---- Opener ------------------------------------------------------------------------------ */

enum { MAX_STREAMS = 256 }; /* incoming SSRCs one connection may have */

/* One incoming stream: its highest authenticated index and which of the WINDOW indices up to
 * it arrived (bit index % WINDOW; bits older than the window are kept clear). */
typedef struct {
    uint32_t ssrc; /* as on the wire */
    uint64_t highest;
    uint64_t seen[WINDOW / 64];
} Received;

struct Opener {
    PyObject_HEAD
    void *ctx; /* EVP_CIPHER_CTX with the session key set, for decrypting */
    unsigned char salt[SALT_BYTES];
    Received *streams;
    int count, capacity;
    unsigned long long refused;
};

static int seen_get(const Received *r, uint64_t index) {
    return (int)((r->seen[(index % WINDOW) / 64] >> (index % 64)) & 1);
}

static void seen_put(Received *r, uint64_t index, int value) {
    uint64_t bit = (uint64_t)1 << (index % 64);
    uint64_t *word = &r->seen[(index % WINDOW) / 64];
    *word = value ? *word | bit : *word & ~bit;
}

/* The stream of `ssrc`, added (with no index yet) when `add`; NULL if unknown or no room. */
static Received *opener_stream(Opener *self, uint32_t ssrc, int add) {
    for (int i = 0; i < self->count; i++)
        if (self->streams[i].ssrc == ssrc)
            return &self->streams[i];
    if (!add || self->count == MAX_STREAMS)
        return NULL;
    if (self->count == self->capacity) {
        int capacity = self->capacity ? 2 * self->capacity : 8;
        Received *grown = PyMem_Realloc(self->streams, (size_t)capacity * sizeof(Received));
        if (grown == NULL)
            return NULL;
        self->streams = grown;
        self->capacity = capacity;
    }
    Received *r = &self->streams[self->count++];
    memset(r, 0, sizeof *r);
    r->ssrc = ssrc;
    return r;
}

/* Authenticate and decrypt the SRTP packet `in` into `out` (the header copied, the payload
 * decrypted, no tag): the clear length, or -1 when the packet is not SRTP, is replayed or too
 * old, fails authentication, or belongs to a 257th stream. The stream's index and window move
 * only for a packet that authenticates. */
int opener_ready(const Opener *self) { return self->ctx != NULL; }

int opener_open(Opener *self, const unsigned char *in, int length, unsigned char *out) {
    int header = header_length(in, length);
    if (header < 0 || length - TAG_BYTES < header || self->ctx == NULL)
        goto refuse;
    uint32_t ssrc;
    memcpy(&ssrc, in + 8, 4);
    Received *known = opener_stream(self, ssrc, 0);
    uint16_t seq = (uint16_t)((in[2] << 8) | in[3]);
    uint64_t index;
    int64_t delta = estimate(known != NULL ? known->highest : 0, seq, &index);
    if (known != NULL && delta <= 0 && (delta <= -WINDOW || seen_get(known, index)))
        goto refuse; /* too old, or a replay */
    unsigned char iv[SALT_BYTES], tag[TAG_BYTES];
    make_iv(self->salt, in, index, iv);
    int body = length - TAG_BYTES - header, n;
    memcpy(tag, in + length - TAG_BYTES, TAG_BYTES);
    if (!evp.decrypt_init(self->ctx, NULL, NULL, NULL, iv) ||
        !evp.decrypt_update(self->ctx, NULL, &n, in, header) ||
        (body > 0 && !evp.decrypt_update(self->ctx, out + header, &n, in + header, body)) ||
        !evp.ctrl(self->ctx, CTRL_SET_TAG, TAG_BYTES, tag) ||
        evp.decrypt_final(self->ctx, out + header + body, &n) <= 0)
        goto refuse;
    memcpy(out, in, header);
    if (known == NULL) {
        if ((known = opener_stream(self, ssrc, 1)) == NULL)
            goto refuse;
        known->highest = index;
    } else if (delta > 0) {
        if (delta >= WINDOW)
            memset(known->seen, 0, sizeof known->seen);
        else
            for (uint64_t i = known->highest + 1; i < index; i++)
                seen_put(known, i, 0);
        known->highest = index;
    }
    seen_put(known, index, 1);
    return header + body;
refuse:
    self->refused++;
    return -1;
}

static void opener_dealloc(Opener *self) {
    if (self->ctx != NULL)
        evp.ctx_free(self->ctx);
    PyMem_Free(self->streams);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int opener_init(Opener *self, PyObject *args, PyObject *kwds) {
    if (self->ctx != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "an Opener is initialised once");
        return -1;
    }
    self->ctx = gcm_context(args, kwds, 0, self->salt);
    return self->ctx != NULL ? 0 : -1;
}

/* open(packet) -> the clear packet, or None when it is refused */
static PyObject *opener_open_py(Opener *self, PyObject *arg) {
    if (self->ctx == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the Opener was never initialised");
        return NULL;
    }
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "open() takes bytes");
        return NULL;
    }
    int length = (int)Py_MIN(PyBytes_GET_SIZE(arg), INT_MAX);
    if (length < 12 + TAG_BYTES) {
        self->refused++;
        Py_RETURN_NONE;
    }
    PyObject *clear = PyBytes_FromStringAndSize(NULL, length - TAG_BYTES);
    if (clear == NULL)
        return NULL;
    int n = opener_open(self, (const unsigned char *)PyBytes_AS_STRING(arg), length,
                        (unsigned char *)PyBytes_AS_STRING(clear));
    if (n < 0) {
        Py_DECREF(clear);
        Py_RETURN_NONE;
    }
    if (n != length - TAG_BYTES && _PyBytes_Resize(&clear, n) < 0)
        return NULL;
    return clear;
}

static PyMethodDef opener_methods[] = {
    {"open", (PyCFunction)opener_open_py, METH_O,
     "open(packet) -> the RTP packet (header and clear payload), or None when it is not SRTP,"
     " fails authentication, is a replay or more than 1023 packets older than its stream's"
     " newest."},
    {NULL},
};

static PyMemberDef opener_members[] = {
    {"refused", T_ULONGLONG, offsetof(Opener, refused), READONLY, "packets refused"},
    {"streams", T_INT, offsetof(Opener, count), READONLY, "incoming SSRCs seen"},
    {NULL},
};

PyTypeObject OpenerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "confsfu.server._wire.Opener",
    .tp_doc = "Opener(key, salt): authentication, replay check and decryption of a connection's"
              " incoming SRTP with AEAD AES-GCM (session key of 16 or 32 bytes, salt of 12).",
    .tp_basicsize = sizeof(Opener),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)opener_init,
    .tp_dealloc = (destructor)opener_dealloc,
    .tp_methods = opener_methods,
    .tp_members = opener_members,
};

static PyObject *sealing_available(PyObject *module, PyObject *unused) {
    return PyBool_FromLong(seal_available());
}

static PyMethodDef seal_functions[] = {
    {"sealing_available", sealing_available, METH_NOARGS,
     "Whether OpenSSL's libcrypto could be loaded, so that Sealers and Openers can be made."},
    {NULL},
};

int seal_add_to(PyObject *module) {
    if (PyType_Ready(&SealerType) < 0 || PyType_Ready(&OpenerType) < 0 ||
        PyModule_AddFunctions(module, seal_functions) < 0 ||
        PyModule_AddObjectRef(module, "Sealer", (PyObject *)&SealerType) < 0 ||
        PyModule_AddObjectRef(module, "Opener", (PyObject *)&OpenerType) < 0)
        return -1;
    return 0;
}
