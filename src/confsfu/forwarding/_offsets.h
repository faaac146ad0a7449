/* One slot's offsets from an (unwrapped) input number onward; older inputs keep theirs (the
 * forwarder's, in _slot.c: a slot's sequence numbers and picture ids are the source's plus these). */
#ifndef CONFSFU_OFFSETS_H
#define CONFSFU_OFFSETS_H

#include <string.h>

#define OFFSETS_KEPT 128

typedef struct {
    long long starts[OFFSETS_KEPT];
    long long offsets[OFFSETS_KEPT];
    int count;
} OffsetMap;

static void offsets_reset(OffsetMap *map, long long start, long long offset) {
    map->starts[0] = start;
    map->offsets[0] = offset;
    map->count = 1;
}

static long long offsets_latest(const OffsetMap *map) { return map->offsets[map->count - 1]; }

/* Dropping a packet moves the offset of everything after it by `delta`; a late packet from
 * before the drop keeps the offset it had. */
static void offsets_shift_from(OffsetMap *map, long long start, long long delta) {
    int last = map->count - 1;
    if (start <= map->starts[last]) {
        map->offsets[last] += delta;
        return;
    }
    long long offset = map->offsets[last] + delta;
    if (map->count == OFFSETS_KEPT) {
        memmove(map->starts, map->starts + 1, (OFFSETS_KEPT - 1) * sizeof(long long));
        memmove(map->offsets, map->offsets + 1, (OFFSETS_KEPT - 1) * sizeof(long long));
        map->count--;
    }
    map->starts[map->count] = start;
    map->offsets[map->count] = offset;
    map->count++;
}

/* The offset for input `n`; 0 with *known false when `n` is older than anything kept. */
static long long offsets_get(const OffsetMap *map, long long n, int *known) {
    *known = 1;
    for (int i = map->count - 1; i >= 0; i--)
        if (n >= map->starts[i])
            return map->offsets[i];
    *known = 0;
    return 0;
}

#endif
