/*
 * The msgpack writer shared by the record packers of libkb.format._packer:
 * _packer.c (confluent-kafka Message objects) and _intake.c (librdkafka
 * messages read in C). Both must write the bytes msgpack.Packer(use_bin_type=
 * True) writes for the same record; the tests compare them byte for byte.
 */
#ifndef LIBKB_MSGPACK_H
#define LIBKB_MSGPACK_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    PyObject *buf; /* bytearray */
    char *data;
    Py_ssize_t pos;
    Py_ssize_t cap;
    /* Set while the writer runs without the GIL (the intake's packing loop, out_unlock), with
     * the bytearray exported through view so that no other thread can resize it. */
    PyThreadState *unlocked;
    Py_buffer view;
} Out;

/* Run on without the GIL, the bytearray exported meanwhile; 0, or -1 with an exception (the
 * GIL still held). */
static inline int out_unlock(Out *o) {
    if (PyObject_GetBuffer(o->buf, &o->view, PyBUF_WRITABLE) < 0)
        return -1;
    o->unlocked = PyEval_SaveThread();
    return 0;
}

/* The GIL back and the export lifted; nothing to do where the writer holds the GIL. */
static inline void out_relock(Out *o) {
    if (o->unlocked == NULL)
        return;
    PyEval_RestoreThread(o->unlocked);
    o->unlocked = NULL;
    PyBuffer_Release(&o->view);
}

static inline int out_reserve(Out *o, Py_ssize_t extra) {
    Py_ssize_t need = o->pos + extra;
    if (need <= o->cap)
        return 0;
    Py_ssize_t cap = o->cap * 2;
    if (cap < need)
        cap = need;
    if (cap < 4096)
        cap = 4096;
    int unlocked = o->unlocked != NULL; /* growing takes the GIL back for that moment only */
    out_relock(o);
    if (PyByteArray_Resize(o->buf, cap) < 0)
        return -1;
    o->data = PyByteArray_AS_STRING(o->buf);
    o->cap = cap;
    return unlocked ? out_unlock(o) : 0;
}

static inline void put_u8(Out *o, uint8_t v) { o->data[o->pos++] = (char)v; }

static inline void put_be(Out *o, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--)
        o->data[o->pos++] = (char)(v >> (8 * i));
}

/* msgpack-python's integer forms: smallest unsigned for >= 0, smallest signed for < 0. */
static inline void put_int(Out *o, int64_t d) {
    if (d < -(1LL << 5)) {
        if (d < -(1LL << 15)) {
            if (d < -(1LL << 31)) {
                put_u8(o, 0xd3);
                put_be(o, (uint64_t)d, 8);
            } else {
                put_u8(o, 0xd2);
                put_be(o, (uint64_t)(uint32_t)(int32_t)d, 4);
            }
        } else if (d < -(1LL << 7)) {
            put_u8(o, 0xd1);
            put_be(o, (uint64_t)(uint16_t)(int16_t)d, 2);
        } else {
            put_u8(o, 0xd0);
            put_u8(o, (uint8_t)(int8_t)d);
        }
    } else if (d < (1LL << 7)) {
        put_u8(o, (uint8_t)(int8_t)d);
    } else if (d < (1LL << 16)) {
        if (d < (1LL << 8)) {
            put_u8(o, 0xcc);
            put_u8(o, (uint8_t)d);
        } else {
            put_u8(o, 0xcd);
            put_be(o, (uint64_t)d, 2);
        }
    } else if (d < (1LL << 32)) {
        put_u8(o, 0xce);
        put_be(o, (uint64_t)d, 4);
    } else {
        put_u8(o, 0xcf);
        put_be(o, (uint64_t)d, 8);
    }
}

/* Room for a header of any kind (tag + 4-byte length) or an integer. */
#define HEAD_ROOM 9

static inline void put_bin_head(Out *o, Py_ssize_t n) {
    if (n < 256) {
        put_u8(o, 0xc4);
        put_u8(o, (uint8_t)n);
    } else if (n < 65536) {
        put_u8(o, 0xc5);
        put_be(o, (uint64_t)n, 2);
    } else {
        put_u8(o, 0xc6);
        put_be(o, (uint64_t)n, 4);
    }
}

static inline void put_str_head(Out *o, Py_ssize_t n) {
    if (n < 32) {
        put_u8(o, (uint8_t)(0xa0 | n));
    } else if (n < 256) {
        put_u8(o, 0xd9);
        put_u8(o, (uint8_t)n);
    } else if (n < 65536) {
        put_u8(o, 0xda);
        put_be(o, (uint64_t)n, 2);
    } else {
        put_u8(o, 0xdb);
        put_be(o, (uint64_t)n, 4);
    }
}

static inline void put_array_head(Out *o, Py_ssize_t n) {
    if (n < 16) {
        put_u8(o, (uint8_t)(0x90 | n));
    } else if (n < 65536) {
        put_u8(o, 0xdc);
        put_be(o, (uint64_t)n, 2);
    } else {
        put_u8(o, 0xdd);
        put_be(o, (uint64_t)n, 4);
    }
}

/* Why a packer stopped before a message (libkb.format.packer's STOP_* constants). */
enum {
    STOP_END = 0,       /* the messages are exhausted */
    STOP_FULL = 1,      /* the block reached limit bytes */
    STOP_OTHER = 2,     /* the next message is of another topic-partition */
    STOP_EVENT = 3,     /* the next message carries an error or an event (EOF) */
    STOP_BOUND = 4,     /* the next message is at or past end_offset */
    STOP_UNUSUAL = 5,   /* the next message has a field this packer does not handle */
};

/* What one packer call packed, reported back to Python. */
typedef struct {
    Py_ssize_t count;
    int64_t first, last, min_ts, max_ts;
} Stats;

static inline void stats_note(Stats *st, int64_t offset, int64_t timestamp) {
    if (st->count == 0) {
        st->first = offset;
        st->min_ts = st->max_ts = timestamp;
    } else if (timestamp < st->min_ts) {
        st->min_ts = timestamp;
    } else if (timestamp > st->max_ts) {
        st->max_ts = timestamp;
    }
    st->last = offset;
    st->count++;
}

/* The record's array head and its three integers; the caller has reserved 1 + 3 * HEAD_ROOM. */
static inline void put_record_head(Out *o, int64_t offset, int64_t timestamp, int64_t ts_type) {
    put_u8(o, 0x96);
    put_int(o, offset);
    put_int(o, timestamp);
    put_int(o, ts_type);
}

#endif
