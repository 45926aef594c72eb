/*
 * RecordProducer: a restore's records produced from C through the
 * restore's confluent-kafka producer.
 *
 * Producer.produce() parses eight arguments, turns the header list into
 * librdkafka headers and finds the topic by name for every record, and the
 * Python loop around it builds a tuple per record; on a 2-core machine that
 * was a quarter of a restore's CPU (bench/README.rst). produce() here takes
 * a block's records (the 6-tuples the segment readers make), checks them
 * with the GIL held, then produces them with rd_kafka_produceva() with the
 * GIL released, so the other partition threads decode meanwhile.
 *
 * Delivery reports stay confluent-kafka's: each message carries the state
 * its produce() would give it (struct Producer_msgstate in its Producer.c:
 * the producer object and a strong reference to the delivery callback,
 * allocated with calloc), which its delivery callback reads, releases and
 * frees when the producer is polled. A failed delivery therefore reaches the
 * run's on_delivery exactly as before.
 *
 * How librdkafka is reached, and the checks before it is: _rdkafka.h.
 */
#include "_produce.h"
#include "_rdkafka.h"
#include "_unpack.h"
#include <stdlib.h>

static struct {
    int (*type)(const rd_kafka_t *);
    void *(*opaque)(const rd_kafka_t *);
    rd_kafka_error_t *(*produceva)(rd_kafka_t *, const rd_kafka_vu_t *, size_t);
    int (*error_code)(const rd_kafka_error_t *);
    void (*error_destroy)(rd_kafka_error_t *);
    rd_kafka_topic_t *(*topic_new)(rd_kafka_t *, const char *, rd_kafka_topic_conf_t *);
    void (*topic_destroy)(rd_kafka_topic_t *);
} pk_fn;
static int pk_resolved;

static int resolve(const char *library) {
    if (pk_resolved)
        return 0;
    const RkSymbol table[] = {
        {(void **)&pk_fn.type, "rd_kafka_type"},
        {(void **)&pk_fn.opaque, "rd_kafka_opaque"},
        {(void **)&pk_fn.produceva, "rd_kafka_produceva"},
        {(void **)&pk_fn.error_code, "rd_kafka_error_code"},
        {(void **)&pk_fn.error_destroy, "rd_kafka_error_destroy"},
        {(void **)&pk_fn.topic_new, "rd_kafka_topic_new"},
        {(void **)&pk_fn.topic_destroy, "rd_kafka_topic_destroy"},
    };
    if (rk_lookup(library, table, sizeof(table) / sizeof(table[0]), "RecordProducer") < 0)
        return -1;
    pk_resolved = 1;
    return 0;
}

/* confluent-kafka's per-message state (Producer.c, struct Producer_msgstate). */
typedef struct {
    PyObject *self;  /* the producer object */
    PyObject *dr_cb; /* strong; its delivery callback releases it */
} MsgState;

typedef struct {
    PyObject_HEAD PyObject *producer; /* strong: its handle must outlive the calls */
    PyObject *on_delivery;            /* NULL: messages carry no state, as with no callback */
    rd_kafka_t *rk;
} RecordProducer;

/* One record's parts, borrowed from its tuple (which the caller's list keeps alive) or from the
 * block's bytes (produce_packed). */
typedef struct {
    const char *key, *value; /* NULL: null */
    Py_ssize_t klen, vlen;
    int64_t ts;              /* 0: the broker's time */
    Py_ssize_t hfirst, hcount;
    int has_headers; /* 0: headers None (read_packed tells it from an empty list) */
} Rec;

typedef struct {
    const char *name;
    const char *value; /* NULL: null */
    Py_ssize_t size;
} Hdr;

typedef struct {
    Rec *recs;
    Hdr *hdrs;
    Py_ssize_t nh, hcap, hmax;
} Batch;

/* PyMem_Raw*: a block is read without the GIL. */
static void batch_free(Batch *b) {
    PyMem_RawFree(b->recs);
    PyMem_RawFree(b->hdrs);
}

/* Room for one more header; -1 when there is no memory. */
static int grow_headers(Batch *b) {
    if (b->nh < b->hcap)
        return 0;
    Py_ssize_t cap = b->hcap ? b->hcap * 2 : 64;
    Hdr *grown = PyMem_RawRealloc(b->hdrs, cap * sizeof(Hdr));
    if (grown == NULL)
        return -1;
    b->hdrs = grown;
    b->hcap = cap;
    return 0;
}

/* bytes -> pointer and size, None -> NULL; -1 with TypeError otherwise. */
static int bytes_part(PyObject *v, const char **p, Py_ssize_t *n, Py_ssize_t i, const char *what) {
    if (v == Py_None) {
        *p = NULL;
        *n = 0;
        return 0;
    }
    if (PyBytes_Check(v)) {
        *p = PyBytes_AS_STRING(v);
        *n = PyBytes_GET_SIZE(v);
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "RecordProducer: record %zd: %s is %.80s, not bytes or None", i, what,
                 Py_TYPE(v)->tp_name);
    return -1;
}

static int add_header(Batch *b, PyObject *h, Py_ssize_t i) {
    if (!PyTuple_Check(h) || PyTuple_GET_SIZE(h) != 2 || !PyUnicode_Check(PyTuple_GET_ITEM(h, 0))) {
        PyErr_Format(PyExc_TypeError, "RecordProducer: record %zd: a header is not a (str, bytes) pair", i);
        return -1;
    }
    if (grow_headers(b) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    Hdr *d = &b->hdrs[b->nh];
    d->name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(h, 0)); /* cached in the str: lives as long as it */
    if (d->name == NULL)
        return -1;
    PyObject *v = PyTuple_GET_ITEM(h, 1);
    if (PyUnicode_Check(v)) { /* as Producer.produce() takes it */
        d->value = PyUnicode_AsUTF8AndSize(v, &d->size);
        if (d->value == NULL)
            return -1;
    } else if (bytes_part(v, &d->value, &d->size, i, "a header value") < 0) {
        return -1;
    }
    b->nh++;
    return 0;
}

/* Read records[i] into r; 0, or -1 with an exception. */
static int read_record(Batch *b, PyObject *item, Py_ssize_t i, Rec *r) {
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 6) {
        PyErr_Format(PyExc_TypeError, "RecordProducer: record %zd is not a 6-tuple", i);
        return -1;
    }
    long long ts = PyLong_AsLongLong(PyTuple_GET_ITEM(item, 1));
    long ts_type = PyLong_AsLong(PyTuple_GET_ITEM(item, 2));
    if (PyErr_Occurred())
        return -1;
    r->ts = ts_type && ts >= 0 ? ts : 0;
    if (bytes_part(PyTuple_GET_ITEM(item, 3), &r->key, &r->klen, i, "the key") < 0 ||
        bytes_part(PyTuple_GET_ITEM(item, 4), &r->value, &r->vlen, i, "the value") < 0)
        return -1;
    PyObject *headers = PyTuple_GET_ITEM(item, 5);
    r->hfirst = b->nh;
    r->hcount = 0;
    r->has_headers = headers != Py_None;
    if (headers == Py_None)
        return 0;
    if (!PyList_Check(headers) && !PyTuple_Check(headers)) { /* their items live in the record */
        PyErr_Format(PyExc_TypeError, "RecordProducer: record %zd: headers must be a list or None", i);
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(headers);
    for (Py_ssize_t k = 0; k < n; k++)
        if (add_header(b, PySequence_Fast_GET_ITEM(headers, k), i) < 0)
            return -1;
    r->hcount = n;
    if (n > b->hmax)
        b->hmax = n;
    return 0;
}

/* Produce recs[from, n) without the GIL; how many were produced (*err: librdkafka's code for the
 * first refused, *oom: no memory for its state). */
static Py_ssize_t produce_all(RecordProducer *self, PyObject *dr, int flags, rd_kafka_topic_t *rkt,
                              int32_t partition, const Batch *b, Py_ssize_t from, Py_ssize_t n,
                              rd_kafka_vu_t *vu, int *err, int *oom, long long *nbytes) {
    Py_ssize_t i;
    for (i = from; i < n; i++) {
        const Rec *r = &b->recs[i];
        MsgState *state = NULL;
        if (dr != NULL) {
            state = calloc(1, sizeof(*state)); /* freed by confluent-kafka's callback: its allocator */
            if (state == NULL) {
                *oom = 1;
                break;
            }
            state->self = self->producer;
            state->dr_cb = dr; /* its reference was taken before the GIL was released */
        }
        size_t c = 0;
        vu[c].vtype = RD_KAFKA_VTYPE_RKT, vu[c++].u.rkt = rkt;
        vu[c].vtype = RD_KAFKA_VTYPE_PARTITION, vu[c++].u.i32 = partition;
        vu[c].vtype = RD_KAFKA_VTYPE_MSGFLAGS, vu[c++].u.i = flags;
        vu[c].vtype = RD_KAFKA_VTYPE_VALUE, vu[c].u.mem.ptr = r->value, vu[c++].u.mem.size = r->vlen;
        vu[c].vtype = RD_KAFKA_VTYPE_KEY, vu[c].u.mem.ptr = r->key, vu[c++].u.mem.size = r->klen;
        vu[c].vtype = RD_KAFKA_VTYPE_TIMESTAMP, vu[c++].u.i64 = r->ts;
        vu[c].vtype = RD_KAFKA_VTYPE_OPAQUE, vu[c++].u.ptr = state;
        for (Py_ssize_t k = 0; k < r->hcount; k++) {
            const Hdr *h = &b->hdrs[r->hfirst + k];
            vu[c].vtype = RD_KAFKA_VTYPE_HEADER;
            vu[c].u.header.name = h->name, vu[c].u.header.val = h->value;
            vu[c++].u.header.size = h->value ? h->size : 0;
        }
        rd_kafka_error_t *e = pk_fn.produceva(self->rk, vu, c);
        if (e != NULL) {
            *err = pk_fn.error_code(e);
            pk_fn.error_destroy(e);
            free(state); /* librdkafka did not take the message: its state is still ours */
            break;
        }
        *nbytes += r->klen + r->vlen;
    }
    return i - from;
}

/* Produce b->recs[from, n) to the partition, holding the GIL only around; (start + how many were
 * produced, error code, key+value bytes), or NULL with an exception. dr: each message's delivery
 * callback (NULL: none); flags: RD_KAFKA_MSG_F_COPY, or 0 when dr keeps the values' memory. */
static PyObject *send_batch(RecordProducer *self, PyObject *dr, int flags, const char *topic,
                            int partition, const Batch *b, Py_ssize_t from, Py_ssize_t n,
                            Py_ssize_t start) {
    rd_kafka_vu_t *vu = PyMem_Malloc((7 + b->hmax) * sizeof(rd_kafka_vu_t));
    if (vu == NULL)
        return PyErr_NoMemory();
    if (dr != NULL)
        for (Py_ssize_t i = from; i < n; i++)
            Py_INCREF(dr); /* one per message; confluent-kafka's callback releases it */
    int err = 0, oom = 0;
    long long nbytes = 0;
    Py_ssize_t done = 0;
    Py_BEGIN_ALLOW_THREADS
    rd_kafka_topic_t *rkt = pk_fn.topic_new(self->rk, topic, NULL);
    if (rkt == NULL) {
        oom = 1;
    } else {
        done = produce_all(self, dr, flags, rkt, partition, b, from, n, vu, &err, &oom, &nbytes);
        pk_fn.topic_destroy(rkt);
    }
    Py_END_ALLOW_THREADS
    if (dr != NULL)
        for (Py_ssize_t i = from + done; i < n; i++)
            Py_DECREF(dr); /* the messages not produced */
    PyMem_Free(vu);
    if (oom) {
        PyErr_Format(PyExc_MemoryError, "RecordProducer: no memory or topic handle for %s", topic);
        return NULL;
    }
    return Py_BuildValue("niL", start + done, err, nbytes);
}

PyDoc_STRVAR(produce_doc,
             "produce(topic, partition, records, start)\n--\n\n"
             "Produce records[start:] to the partition; (next index, error code, key+value bytes\n"
             "produced). The error code is 0 when all were, else librdkafka's for records[next],\n"
             "which was not produced (-184: the local queue is full; poll and call again from\n"
             "there). The list must not change during the call.");

static PyObject *RecordProducer_produce(RecordProducer *self, PyObject *args) {
    const char *topic;
    int partition;
    PyObject *records;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "siO!n:produce", &topic, &partition, &PyList_Type, &records, &start))
        return NULL;
    if (self->producer == NULL || rk_handle_of(self->producer) != self->rk) {
        PyErr_SetString(PyExc_RuntimeError, "RecordProducer: its producer was closed");
        return NULL;
    }
    Py_ssize_t total = PyList_GET_SIZE(records);
    if (start < 0 || start > total) {
        PyErr_SetString(PyExc_IndexError, "RecordProducer: start is outside the records");
        return NULL;
    }
    Py_ssize_t n = total - start;
    Batch b = {0};
    b.recs = PyMem_RawMalloc((n ? n : 1) * sizeof(Rec));
    if (b.recs == NULL)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        if (read_record(&b, PyList_GET_ITEM(records, start + i), start + i, &b.recs[i]) < 0) {
            batch_free(&b);
            return NULL;
        }
    }
    PyObject *result =
        send_batch(self, self->on_delivery, RD_KAFKA_MSG_F_COPY, topic, partition, &b, 0, n, start);
    batch_free(&b);
    return result;
}

/* One record of a block into rec, its headers appended to b (names copied, NUL-terminated, into
 * *names at offsets kept in Hdr.name until the block is read); 1, 0 if it is not a plain record
 * at `offset`, -1 when there is no memory. */
static int read_one(Rd *r, int64_t offset, Batch *b, Rec *rec, char **names, size_t *nlen, size_t *ncap) {
    size_t n;
    int64_t at, ts, ts_type;
    const uint8_t *k, *v;
    size_t kl, vl;
    if (rd_array(r, &n) < 0 || n != 6 || rd_int64(r, &at) < 0 || at != offset || rd_int64(r, &ts) < 0 ||
        rd_int64(r, &ts_type) < 0 || rd_bin_or_nil(r, &k, &kl) < 0 || rd_bin_or_nil(r, &v, &vl) < 0 ||
        !rd_need(r, 1))
        return 0;
    rec->key = (const char *)k, rec->klen = (Py_ssize_t)kl;
    rec->value = (const char *)v, rec->vlen = (Py_ssize_t)vl;
    rec->ts = ts_type && ts >= 0 ? ts : 0;
    rec->hfirst = b->nh;
    rec->hcount = 0;
    rec->has_headers = *r->p != 0xc0;
    if (!rec->has_headers) {
        r->p++;
        return 1;
    }
    size_t nh;
    if (rd_array(r, &nh) < 0)
        return 0;
    for (size_t h = 0; h < nh; h++) {
        size_t two, namelen, size;
        const uint8_t *name, *value;
        if (rd_array(r, &two) < 0 || two != 2 || rd_str(r, &name, &namelen) < 0 ||
            rd_bin_or_nil(r, &value, &size) < 0)
            return 0;
        if (*nlen + namelen + 1 > *ncap) {
            size_t cap = (*ncap ? *ncap * 2 : 4096) + namelen + 1;
            char *grown = PyMem_RawRealloc(*names, cap);
            if (grown == NULL)
                return -1;
            *names = grown, *ncap = cap;
        }
        if (grow_headers(b) < 0)
            return -1;
        memcpy(*names + *nlen, name, namelen);
        (*names)[*nlen + namelen] = '\0';
        Hdr *d = &b->hdrs[b->nh++];
        d->name = (const char *)(uintptr_t)*nlen; /* an offset until the names stop moving */
        d->value = (const char *)value, d->size = (Py_ssize_t)size;
        *nlen += namelen + 1;
    }
    rec->hcount = (Py_ssize_t)nh;
    if (rec->hcount > b->hmax)
        b->hmax = rec->hcount;
    return 1;
}

/* A block's `count` records from buf[0, len) into b, pointing into buf (_unpack.h says what is
 * accepted); 1, 0 if it is not a whole plain block from `first` to `last`, -1 with no memory.
 * Needs no GIL. *names: the header names, to free with PyMem_RawFree. */
static int read_block(const uint8_t *buf, size_t len, Py_ssize_t count, int64_t first, int64_t last,
                      Batch *b, char **names) {
    *names = NULL;
    if (count <= 0 || last < first || (uint64_t)last - (uint64_t)first != (uint64_t)count - 1)
        return 0;
    b->recs = PyMem_RawMalloc((size_t)count * sizeof(Rec));
    if (b->recs == NULL)
        return -1;
    Rd r = {buf, buf + len};
    size_t nlen = 0, ncap = 0;
    int ok = 1;
    for (Py_ssize_t i = 0; i < count && ok == 1; i++)
        ok = read_one(&r, first + i, b, &b->recs[i], names, &nlen, &ncap);
    if (ok == 1 && r.p != r.end)
        ok = 0;
    if (ok == 1)
        for (Py_ssize_t h = 0; h < b->nh; h++)
            b->hdrs[h].name = *names + (uintptr_t)b->hdrs[h].name;
    return ok;
}

/* read_block without the GIL; as it, with a MemoryError set for -1. */
static int read_block_released(Py_buffer *view, Py_ssize_t pos, Py_ssize_t count, long long first,
                               long long last, Batch *b, char **names) {
    if (pos < 0 || pos > view->len) {
        PyErr_SetString(PyExc_IndexError, "RecordProducer: pos is outside the block");
        return -1;
    }
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = read_block((const uint8_t *)view->buf + pos, (size_t)(view->len - pos), count, first, last, b,
                    names);
    Py_END_ALLOW_THREADS
    if (ok < 0)
        PyErr_NoMemory();
    return ok;
}

PyDoc_STRVAR(produce_packed_doc,
             "produce_packed(topic, partition, block, pos, first, last, count, start, keep=None)\n--\n\n"
             "Produce the records of a decoded block (its msgpack bytes from block[pos:]) from\n"
             "record `start` on, as produce() does; the block must hold exactly `count` plain\n"
             "records at offsets first..last. (next index, error code, key+value bytes), or\n"
             "(-1, 0, 0) when it does not: nothing was produced, decode it in Python.\n"
             "keep: a callable that holds the block's memory and forwards to on_delivery; each\n"
             "message then points into the block instead of a copy, and holds a reference to keep\n"
             "until its delivery is reported (the block must not change meanwhile). None, or no\n"
             "on_delivery: the values are copied, and on_delivery is the messages' callback.");

static PyObject *RecordProducer_produce_packed(RecordProducer *self, PyObject *args) {
    const char *topic;
    int partition;
    Py_buffer view;
    Py_ssize_t pos, count, start;
    long long first, last;
    PyObject *keep = Py_None;
    if (!PyArg_ParseTuple(args, "siy*nLLnn|O:produce_packed", &topic, &partition, &view, &pos, &first,
                          &last, &count, &start, &keep))
        return NULL;
    PyObject *result = NULL;
    Batch b = {0};
    char *names = NULL;
    if (self->producer == NULL || rk_handle_of(self->producer) != self->rk) {
        PyErr_SetString(PyExc_RuntimeError, "RecordProducer: its producer was closed");
        goto done;
    }
    int ok = read_block_released(&view, pos, count, first, last, &b, &names);
    if (ok < 0)
        goto done;
    if (ok == 0) {
        result = Py_BuildValue("nii", (Py_ssize_t)-1, 0, 0);
        goto done;
    }
    if (start < 0 || start > count) {
        PyErr_SetString(PyExc_IndexError, "RecordProducer: start is outside the records");
        goto done;
    }
    if (keep != Py_None && !PyCallable_Check(keep)) {
        PyErr_SetString(PyExc_TypeError, "RecordProducer: keep must be callable or None");
        goto done;
    }
    if (keep != Py_None && self->on_delivery != NULL) /* messages point into the block keep holds */
        result = send_batch(self, keep, 0, topic, partition, &b, start, count, start);
    else
        result = send_batch(self, self->on_delivery, RD_KAFKA_MSG_F_COPY, topic, partition, &b, start,
                            count, start);
done:
    batch_free(&b);
    PyMem_RawFree(names);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *nullable_bytes(const char *p, Py_ssize_t n) {
    if (p == NULL)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize(p, n);
}

/* One read record as (key, value, headers, timestamp): what it is produced as. */
static PyObject *produced_tuple(const Batch *b, const Rec *r) {
    PyObject *headers = Py_None;
    Py_INCREF(headers);
    if (r->has_headers) {
        Py_DECREF(headers);
        headers = PyList_New(r->hcount);
        if (headers == NULL)
            return NULL;
        for (Py_ssize_t k = 0; k < r->hcount; k++) {
            const Hdr *h = &b->hdrs[r->hfirst + k];
            PyObject *pair = Py_BuildValue("(sN)", h->name, nullable_bytes(h->value, h->size));
            if (pair == NULL) {
                Py_DECREF(headers);
                return NULL;
            }
            PyList_SET_ITEM(headers, k, pair);
        }
    }
    return Py_BuildValue("(NNNL)", nullable_bytes(r->key, r->klen), nullable_bytes(r->value, r->vlen),
                         headers, (long long)r->ts);
}

PyDoc_STRVAR(read_packed_doc,
             "read_packed(block, pos, first, last, count)\n--\n\n"
             "The records produce_packed() would produce from the block, each as (key, value,\n"
             "headers, timestamp), or None when it would decline the block (for the tests).");

static PyObject *RecordProducer_read_packed(PyObject *cls, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, count;
    long long first, last;
    if (!PyArg_ParseTuple(args, "y*nLLn:read_packed", &view, &pos, &first, &last, &count))
        return NULL;
    PyObject *result = NULL;
    Batch b = {0};
    char *names = NULL;
    int ok = read_block_released(&view, pos, count, first, last, &b, &names);
    if (ok == 0) {
        result = Py_None;
        Py_INCREF(result);
    } else if (ok == 1 && (result = PyList_New(count)) != NULL) {
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *item = produced_tuple(&b, &b.recs[i]);
            if (item == NULL) {
                Py_CLEAR(result);
                break;
            }
            PyList_SET_ITEM(result, i, item);
        }
    }
    batch_free(&b);
    PyMem_RawFree(names);
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(consecutive_doc, "consecutive(records, first)\n--\n\n"
                              "True when the records' offsets are first, first + 1, ...");

static PyObject *RecordProducer_consecutive(PyObject *cls, PyObject *args) {
    PyObject *records;
    long long first;
    if (!PyArg_ParseTuple(args, "O!L:consecutive", &PyList_Type, &records, &first))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(records);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(records, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 1)
            Py_RETURN_FALSE;
        long long offset = PyLong_AsLongLong(PyTuple_GET_ITEM(item, 0));
        if (offset == -1 && PyErr_Occurred())
            return NULL;
        if (offset != first + i)
            Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

static int RecordProducer_init(RecordProducer *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"producer", "producer_type", "on_delivery", "library", NULL};
    PyObject *producer, *on_delivery;
    PyTypeObject *producer_type;
    const char *library;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!Os:RecordProducer", kwlist, &producer,
                                     &PyType_Type, &producer_type, &on_delivery, &library))
        return -1;
    if (self->producer != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "RecordProducer: already initialised");
        return -1;
    }
    if (!PyObject_TypeCheck(producer, producer_type)) {
        PyErr_Format(PyExc_TypeError, "RecordProducer: %R is not a %R", producer, producer_type);
        return -1;
    }
    if (on_delivery != Py_None && !PyCallable_Check(on_delivery)) {
        PyErr_SetString(PyExc_TypeError, "RecordProducer: on_delivery must be callable or None");
        return -1;
    }
    if (resolve(library) < 0)
        return -1;
    rd_kafka_t *rk = rk_handle_of(producer);
    if (rk == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "RecordProducer: the producer is closed");
        return -1;
    }
    if (pk_fn.type(rk) != RD_KAFKA_PRODUCER || pk_fn.opaque(rk) != (void *)producer) {
        PyErr_SetString(PyExc_TypeError, "RecordProducer: this confluent-kafka's producer layout is not known");
        return -1;
    }
    self->rk = rk;
    Py_INCREF(producer);
    self->producer = producer;
    if (on_delivery != Py_None) {
        Py_INCREF(on_delivery);
        self->on_delivery = on_delivery;
    }
    return 0;
}

static void RecordProducer_dealloc(RecordProducer *self) {
    Py_XDECREF(self->producer);
    Py_XDECREF(self->on_delivery);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef RecordProducer_methods[] = {
    {"produce", (PyCFunction)RecordProducer_produce, METH_VARARGS, produce_doc},
    {"produce_packed", (PyCFunction)RecordProducer_produce_packed, METH_VARARGS, produce_packed_doc},
    {"consecutive", (PyCFunction)RecordProducer_consecutive, METH_VARARGS | METH_STATIC, consecutive_doc},
    {"read_packed", (PyCFunction)RecordProducer_read_packed, METH_VARARGS | METH_STATIC, read_packed_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(RecordProducer_doc,
             "RecordProducer(producer, producer_type, on_delivery, library)\n--\n\n"
             "Produces record tuples through a confluent-kafka producer's handle (library: the\n"
             "path of the extension that loaded librdkafka). on_delivery: the callback the\n"
             "producer was configured with, or None.");

PyTypeObject RecordProducerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "libkb.format._packer.RecordProducer",
    .tp_basicsize = sizeof(RecordProducer),
    .tp_dealloc = (destructor)RecordProducer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = RecordProducer_doc,
    .tp_methods = RecordProducer_methods,
    .tp_init = (initproc)RecordProducer_init,
    .tp_new = PyType_GenericNew,
};

int produce_add_type(PyObject *module) {
    if (PyType_Ready(&RecordProducerType) < 0)
        return -1;
    Py_INCREF(&RecordProducerType);
    if (PyModule_AddObject(module, "RecordProducer", (PyObject *)&RecordProducerType) < 0) {
        Py_DECREF(&RecordProducerType);
        return -1;
    }
    return 0;
}
