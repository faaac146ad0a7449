/* confsfu.bandwidth._counts's C API, for the intake in confsfu._wire (via a capsule). */
#ifndef CONFSFU_COUNTS_H
#define CONFSFU_COUNTS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define COUNTS_API_CAPSULE "confsfu.bandwidth._counts._C_API"

enum { SPATIAL_LAYERS = 3, TEMPORAL_LAYERS = 3 };

typedef struct LayerCounts LayerCounts;

typedef struct {
    PyTypeObject *type; /* LayerCounts */
    /* Count one packet of layer (spatial, temporal): 0, or -1 (no exception set) for a layer
     * or size out of range, or counts never initialised. */
    int (*add)(LayerCounts *counts, long long now_ms, int spatial, int temporal, long long size);
} CountsApi;

#endif
