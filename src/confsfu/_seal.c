/* confsfu._wire's Sealer: SRTP protection of one outgoing RTP stream with AEAD AES-GCM
 * (RFC 7714), the profile WebRTC peers (browsers, aiortc) negotiate first.
 *
 * The per-packet work is OpenSSL's (EVP, AES-NI); everything around it is a few lines here:
 * the packet index (RFC 3711 section 3.3.1, as libsrtp estimates it), the IV, and the tag.
 * libsrtp does the same with a replay database, a stream lookup and key-usage bookkeeping per
 * packet, which cost more than the cipher. The session key and salt come from the DTLS keying
 * material through confsfu.server.srtp_keys. libcrypto is loaded at run time (Python itself links
 * it): no OpenSSL headers are needed to build.
 */
#include "_seal.h"

#include <dlfcn.h>
#include <string.h>

enum {
    SALT_BYTES = 12,
    TAG_BYTES = 16,
    CTRL_GET_TAG = 0x10, /* EVP_CTRL_AEAD_GET_TAG */
    WINDOW = 1024,       /* how far behind the newest index a packet may still be protected */
    SEQ_MEDIAN = 1 << 15,
};

/* The EVP functions the sealer uses, with OpenSSL's (1.1 and 3) signatures. */
static struct {
    void *(*ctx_new)(void);
    void (*ctx_free)(void *);
    const void *(*aes_128_gcm)(void);
    const void *(*aes_256_gcm)(void);
    int (*init)(void *, const void *, void *, const unsigned char *, const unsigned char *);
    int (*update)(void *, unsigned char *, int *, const unsigned char *, int);
    int (*final)(void *, unsigned char *, int *);
    int (*ctrl)(void *, int, int, void *);
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
    const char *names[] = {"EVP_CIPHER_CTX_new", "EVP_CIPHER_CTX_free", "EVP_aes_128_gcm",
                           "EVP_aes_256_gcm",    "EVP_EncryptInit_ex",  "EVP_EncryptUpdate",
                           "EVP_EncryptFinal_ex", "EVP_CIPHER_CTX_ctrl"};
    void *symbols[8];
    for (int i = 0; i < 8; i++)
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
    evp_state = 1;
    return 1;
}

struct Sealer {
    PyObject_HEAD
    void *ctx; /* EVP_CIPHER_CTX with the session key set */
    unsigned char salt[SALT_BYTES];
    uint64_t index; /* the highest packet index protected (48 bits: ROC and SEQ) */
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

int sealer_seal(Sealer *self, unsigned char *packet, int *length) {
    int header = header_length(packet, *length);
    if (header < 0)
        goto refuse;
    uint16_t seq = (uint16_t)((packet[2] << 8) | packet[3]);
    uint64_t index;
    int64_t delta = estimate(self->index, seq, &index);
    if (delta <= -WINDOW)
        goto refuse;
    /* IV: (00 00 || SSRC || ROC || SEQ) XOR salt (RFC 7714 8.1) */
    unsigned char iv[SALT_BYTES] = {0};
    memcpy(iv + 2, packet + 8, 4);
    uint32_t roc = (uint32_t)(index >> 16);
    iv[6] = (unsigned char)(roc >> 24);
    iv[7] = (unsigned char)(roc >> 16);
    iv[8] = (unsigned char)(roc >> 8);
    iv[9] = (unsigned char)roc;
    iv[10] = packet[2];
    iv[11] = packet[3];
    for (int i = 0; i < SALT_BYTES; i++)
        iv[i] ^= self->salt[i];
    int out, body = *length - header;
    if (!evp.init(self->ctx, NULL, NULL, NULL, iv) ||
        !evp.update(self->ctx, NULL, &out, packet, header) ||
        (body > 0 && !evp.update(self->ctx, packet + header, &out, packet + header, body)) ||
        !evp.final(self->ctx, packet + *length, &out) ||
        !evp.ctrl(self->ctx, CTRL_GET_TAG, TAG_BYTES, packet + *length))
        goto refuse;
    *length += TAG_BYTES;
    if (delta > 0)
        self->index = index;
    return 0;
refuse:
    self->refused++;
    return -1;
}

/* ---- the Python type ------------------------------------------------------------------ */

static void sealer_dealloc(Sealer *self) {
    if (self->ctx != NULL)
        evp.ctx_free(self->ctx);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int sealer_init(Sealer *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"key", "salt", NULL};
    Py_buffer key, salt;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*y*", keywords, &key, &salt))
        return -1;
    int rc = -1;
    if (!seal_available()) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL's libcrypto could not be loaded");
    } else if ((key.len != 16 && key.len != 32) || salt.len != SALT_BYTES) {
        PyErr_SetString(PyExc_ValueError, "AES-GCM takes a 16- or 32-byte key and a 12-byte salt");
    } else if (self->ctx != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Sealer is initialised once");
    } else if ((self->ctx = evp.ctx_new()) == NULL) {
        PyErr_NoMemory();
    } else if (!evp.init(self->ctx, key.len == 16 ? evp.aes_128_gcm() : evp.aes_256_gcm(), NULL,
                         key.buf, NULL)) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL refused the AES-GCM key");
    } else {
        memcpy(self->salt, salt.buf, SALT_BYTES);
        rc = 0;
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&salt);
    return rc;
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
    if (sealer_seal(self, buffer, &length) != 0)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)buffer, length);
}

static PyMethodDef sealer_methods[] = {
    {"seal", (PyCFunction)sealer_seal_py, METH_O,
     "seal(packet) -> the SRTP packet (header, ciphertext, 16-byte tag), or None when it is"
     " not RTP or more than 1023 packets older than the newest sealed."},
    {NULL},
};

static PyMemberDef sealer_members[] = {
    {"refused", T_ULONGLONG, offsetof(Sealer, refused), READONLY, "packets refused"},
    {NULL},
};

PyTypeObject SealerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "confsfu._wire.Sealer",
    .tp_doc = "Sealer(key, salt): SRTP AEAD AES-GCM protection of one outgoing RTP stream, with"
              " the session key (16 or 32 bytes) and session salt (12 bytes).",
    .tp_basicsize = sizeof(Sealer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)sealer_init,
    .tp_dealloc = (destructor)sealer_dealloc,
    .tp_methods = sealer_methods,
    .tp_members = sealer_members,
};
