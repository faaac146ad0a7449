/* confsfu.server._wire's fan_out: one incoming packet onto every slot that carries its layer. Per
 * slot, the slot's forwarder (confsfu.forwarding._slot, through its C API) decides and the
 * slot's Wire writes, protects and queues; Python hears only of slots that switched source or
 * have no route. The slots come as a tuple of (slot, forwarder, wire) entries that Python
 * builds when a layer's slots change, so a packet costs no attribute lookup and no copy.
 */
#include "_wire.h"

static const SlotApi *slot_api;

static int note(PyObject **list, PyObject *slot) {
    if (*list == NULL && (*list = PyList_New(0)) == NULL)
        return -1;
    return PyList_Append(*list, slot);
}

/* The slot's picture id and TL0PICIDX, and where they go in the packet's VP8 descriptor
 * (wire_put checks that they fit the payload). */
static void patch_for(const Descriptor *d, const Numbers *n, Patch *out) {
    out->picture_id_offset = n->picture_id >= 0 ? (uint16_t)d->picture_id_offset : 0;
    out->picture_id_bits = (uint8_t)d->picture_id_bits;
    out->picture_id = (uint16_t)(n->picture_id & 0x7fff);
    out->tl0picidx_offset = n->tl0picidx >= 0 ? (uint16_t)d->tl0picidx_offset : 0;
    out->tl0picidx = (uint8_t)n->tl0picidx;
}

int fan_out_packet(PyObject *entries, const Packet *p, long long now_ms,
                   const unsigned char *stamp, FanResult *r) {
    r->sent = 0;
    r->bytes = 0;
    r->switched = r->unrouted = NULL;
    if (!PyTuple_Check(entries)) {
        PyErr_SetString(PyExc_TypeError, "fan_out takes a tuple of (slot, forwarder, wire)");
        return -1;
    }
    /* Held: a relayed route's Python sendto may run while the arena drains. */
    Py_INCREF(entries);
    Descriptor d = p->descriptor;
    int have_descriptor = p->has_descriptor, failed = 0;
    Py_ssize_t count = PyTuple_GET_SIZE(entries);
    for (Py_ssize_t i = 0; i < count && !failed; i++) {
        PyObject *entry = PyTuple_GET_ITEM(entries, i);
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 3 ||
            !PyObject_TypeCheck(PyTuple_GET_ITEM(entry, 1), slot_api->forwarder_type) ||
            !PyObject_TypeCheck(PyTuple_GET_ITEM(entry, 2), &WireType)) {
            PyErr_SetString(PyExc_TypeError, "an entry is (slot, SlotForwarder, Wire)");
            failed = 1;
            break;
        }
        /* Borrowed: `entries` holds them. */
        PyObject *slot = PyTuple_GET_ITEM(entry, 0);
        PyObject *fwd = PyTuple_GET_ITEM(entry, 1);
        PyObject *wire = PyTuple_GET_ITEM(entry, 2);
        Numbers n;
        int flags = slot_api->decide(fwd, now_ms, p, &n);
        if (flags & DECIDE_FORWARD) {
            Patch patch;
            int patched = 0;
            if (flags & DECIDE_REWRITE) {
                if (!have_descriptor && slot_api->descriptor_from(p->vp8, &d) == 0)
                    have_descriptor = 1;
                patched = have_descriptor ? 1 : -1;
                if (have_descriptor)
                    patch_for(&d, &n, &patch);
            }
            Py_ssize_t length = -1;
            if (patched >= 0)
                length = wire_put((Wire *)wire, p->marker, n.seq, n.ts, stamp, p->payload,
                                  patched ? &patch : NULL);
            if (length > 0) {
                r->sent++;
                r->bytes += length;
            } else if (length == 0) {
                failed = note(&r->unrouted, slot) < 0;
            } else if (length != -2) { /* -2: too large, counted by the wire */
                failed = 1;
            }
        }
        if (!failed && (flags & DECIDE_SWITCHED))
            failed = note(&r->switched, slot) < 0;
    }
    Py_DECREF(entries);
    if (failed) {
        Py_CLEAR(r->switched);
        Py_CLEAR(r->unrouted);
        return -1;
    }
    return 0;
}

/* fan_out(entries, inbound, now_ms, send_time) -> (sent, bytes, switched, unrouted) */
static PyObject *fan_out(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "fan_out takes 4 arguments");
        return NULL;
    }
    if (!PyTuple_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "fan_out takes a tuple of (slot, forwarder, wire)");
        return NULL;
    }
    long long now_ms = PyLong_AsLongLong(args[2]);
    if (now_ms == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer send_time;
    if (PyObject_GetBuffer(args[3], &send_time, PyBUF_SIMPLE) < 0)
        return NULL;
    Packet p = {.n_held = 0};
    PyObject *result = NULL;
    FanResult r;
    if (slot_api->packet_from(args[1], &p) == 0 &&
        fan_out_packet(args[0], &p, now_ms, send_time.len == 3 ? send_time.buf : NULL, &r) == 0) {
        result = Py_BuildValue("(lLOO)", r.sent, r.bytes, r.switched ? r.switched : Py_None,
                               r.unrouted ? r.unrouted : Py_None);
        Py_XDECREF(r.switched);
        Py_XDECREF(r.unrouted);
    }
    slot_api->packet_release(&p);
    PyBuffer_Release(&send_time);
    return result;
}

static PyMethodDef fan_out_def = {
    "fan_out", (PyCFunction)(void (*)(void))fan_out, METH_FASTCALL,
    "fan_out(entries, inbound, now_ms, send_time) -> (sent, bytes, switched, unrouted): queue"
    " one incoming packet on every slot of a tuple of (slot, forwarder, wire) whose forwarder"
    " forwards it. `switched` lists the slots whose source changed, `unrouted` those whose"
    " route is down (or None)."};

int fan_out_add_to(PyObject *module) {
    PyObject *slot_module = PyImport_ImportModule("confsfu.forwarding._slot");
    if (slot_module == NULL)
        return -1;
    Py_DECREF(slot_module); /* imported: the capsule's path can be followed now */
    slot_api = PyCapsule_Import(SLOT_API_CAPSULE, 0);
    if (slot_api == NULL)
        return -1;
    PyObject *fn = PyCFunction_NewEx(&fan_out_def, NULL, NULL);
    if (fn == NULL)
        return -1;
    int rc = PyModule_AddObjectRef(module, "fan_out", fn);
    Py_DECREF(fn);
    return rc;
}
