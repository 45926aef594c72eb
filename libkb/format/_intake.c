/*
 * Intake: a backup consumer's messages read from librdkafka in C.
 *
 * confluent-kafka's consume() makes a Message object per record, with a
 * bytes object for its key and one for its value, and the packer then copies
 * those bytes again into the block. On a 2-core machine that per-record work
 * on the consuming thread is what bounds a backup of small, compressible
 * records (bench/README.rst). The Intake takes the messages of the
 * partitions routed to it from librdkafka's queue in batches and lets
 * pack_messages write them straight into the block; Python sees one message
 * per run (what the reader needs to classify it) and the events.
 *
 * How it reaches librdkafka, and why that is safe:
 * - as _rdkafka.h says: functions looked up in the library confluent-kafka
 *   loaded, the client handle read from its consumer object; the Intake
 *   checks the object's type and that the handle's opaque pointer (which
 *   confluent-kafka sets to the object itself) is that object before using it;
 * - each routed partition's fetch queue is forwarded to the Intake's own
 *   queue (rd_kafka_queue_forward, documented for per-partition consuming),
 *   so the consumer's queue, where librdkafka puts the events that call
 *   confluent-kafka's callbacks (errors, statistics, logs), is not served
 *   here: those callbacks need confluent-kafka's per-call thread state. The
 *   reader serves that queue with consume() between batches.
 * - messages handed out are destroyed at the next fetch or at close(), which
 *   must come before the consumer's close(): librdkafka's destroy waits for
 *   every queue and message the application holds, so it would block.
 */
#include "_intake.h"
#include "_rdkafka.h"
#include <dlfcn.h>

static struct {
    int (*type)(const rd_kafka_t *);
    void *(*opaque)(const rd_kafka_t *);
    rd_kafka_queue_t *(*queue_new)(rd_kafka_t *);
    rd_kafka_queue_t *(*queue_get_partition)(rd_kafka_t *, const char *, int32_t);
    void (*queue_forward)(rd_kafka_queue_t *, rd_kafka_queue_t *);
    void (*queue_destroy)(rd_kafka_queue_t *);
    Py_ssize_t (*consume_batch_queue)(rd_kafka_queue_t *, int, rd_kafka_message_t **, size_t);
    void (*message_destroy)(rd_kafka_message_t *);
    int64_t (*message_timestamp)(const rd_kafka_message_t *, int *);
    int (*message_headers)(const rd_kafka_message_t *, rd_kafka_headers_t **);
    int32_t (*message_leader_epoch)(const rd_kafka_message_t *);
    size_t (*header_cnt)(const rd_kafka_headers_t *);
    int (*header_get_all)(const rd_kafka_headers_t *, size_t, const char **, const void **, size_t *);
    const char *(*topic_name)(const rd_kafka_topic_t *);
    const char *(*err2str)(int);
} rk_fn;
static int rk_resolved;

int rk_lookup(const char *library, const RkSymbol *table, size_t n, const char *who) {
    void *lib = dlopen(library, RTLD_NOW | RTLD_NOLOAD);
    if (lib == NULL) {
        PyErr_Format(PyExc_ImportError, "%s: %s is not loaded (%s)", who, library, dlerror());
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        *table[i].slot = dlsym(lib, table[i].name);
        if (*table[i].slot == NULL) {
            PyErr_Format(PyExc_ImportError, "%s: %s has no %s", who, library, table[i].name);
            dlclose(lib);
            return -1;
        }
    }
    return 0; /* the library stays loaded with confluent-kafka: the handle is kept */
}

/* Look librdkafka's functions up in the library confluent-kafka loaded (path: its extension). */
static int resolve(const char *library) {
    if (rk_resolved)
        return 0;
    const RkSymbol table[] = {
        {(void **)&rk_fn.type, "rd_kafka_type"},
        {(void **)&rk_fn.opaque, "rd_kafka_opaque"},
        {(void **)&rk_fn.queue_new, "rd_kafka_queue_new"},
        {(void **)&rk_fn.queue_get_partition, "rd_kafka_queue_get_partition"},
        {(void **)&rk_fn.queue_forward, "rd_kafka_queue_forward"},
        {(void **)&rk_fn.queue_destroy, "rd_kafka_queue_destroy"},
        {(void **)&rk_fn.consume_batch_queue, "rd_kafka_consume_batch_queue"},
        {(void **)&rk_fn.message_destroy, "rd_kafka_message_destroy"},
        {(void **)&rk_fn.message_timestamp, "rd_kafka_message_timestamp"},
        {(void **)&rk_fn.message_headers, "rd_kafka_message_headers"},
        {(void **)&rk_fn.message_leader_epoch, "rd_kafka_message_leader_epoch"},
        {(void **)&rk_fn.header_cnt, "rd_kafka_header_cnt"},
        {(void **)&rk_fn.header_get_all, "rd_kafka_header_get_all"},
        {(void **)&rk_fn.topic_name, "rd_kafka_topic_name"},
        {(void **)&rk_fn.err2str, "rd_kafka_err2str"},
    };
    if (rk_lookup(library, table, sizeof(table) / sizeof(table[0]), "Intake") < 0)
        return -1;
    rk_resolved = 1;
    return 0;
}

typedef struct {
    PyObject_HEAD PyObject *consumer; /* strong: its handle must outlive ours */
    PyObject *factory;                /* makes the Python view of one message */
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;          /* NULL once closed */
    rd_kafka_message_t **msgs;
    Py_ssize_t n, cap;
    int busy; /* a fetch or a packing runs without the GIL: the batch is not to be touched */
} Intake;

static int check_idle(Intake *self) {
    if (!self->busy)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "Intake: in use by another thread (one reader per intake)");
    return -1;
}

static int check_open(Intake *self) {
    if (check_idle(self) < 0)
        return -1;
    if (self->queue == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Intake: closed");
        return -1;
    }
    if (rk_handle_of(self->consumer) != self->rk) {
        PyErr_SetString(PyExc_RuntimeError, "Intake: its consumer was closed");
        return -1;
    }
    return 0;
}

/* Destroy the messages handed out (called without the GIL or with it; librdkafka's own locks). */
static void drop_messages(Intake *self) {
    for (Py_ssize_t i = 0; i < self->n; i++)
        rk_fn.message_destroy(self->msgs[i]);
    self->n = 0;
}

static int Intake_init(Intake *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"consumer", "consumer_type", "factory", "library", NULL};
    PyObject *consumer, *factory;
    PyTypeObject *consumer_type;
    const char *library;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!Os:Intake", kwlist, &consumer, &PyType_Type,
                                     &consumer_type, &factory, &library))
        return -1;
    if (self->consumer != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Intake: already initialised");
        return -1;
    }
    if (!PyObject_TypeCheck(consumer, consumer_type)) {
        PyErr_Format(PyExc_TypeError, "Intake: %R is not a %R", consumer, consumer_type);
        return -1;
    }
    if (resolve(library) < 0)
        return -1;
    rd_kafka_t *rk = rk_handle_of(consumer);
    if (rk == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Intake: the consumer is closed");
        return -1;
    }
    if (rk_fn.type(rk) != RD_KAFKA_CONSUMER || rk_fn.opaque(rk) != (void *)consumer) {
        PyErr_SetString(PyExc_TypeError, "Intake: this confluent-kafka's consumer layout is not known");
        return -1;
    }
    self->queue = rk_fn.queue_new(rk);
    if (self->queue == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Intake: librdkafka refused a new queue");
        return -1;
    }
    self->rk = rk;
    Py_INCREF(consumer);
    self->consumer = consumer;
    Py_INCREF(factory);
    self->factory = factory;
    return 0;
}

static void close_queue(Intake *self) {
    if (self->queue == NULL)
        return;
    if (rk_handle_of(self->consumer) == self->rk) {
        drop_messages(self);
        rk_fn.queue_destroy(self->queue);
    } /* else the client is gone (closed first, against the rule): touching what it held would be
       * a use after free, so it is left */
    self->n = 0;
    self->queue = NULL;
}

static void Intake_dealloc(Intake *self) {
    if (self->consumer != NULL)
        close_queue(self);
    PyMem_Free(self->msgs);
    Py_XDECREF(self->consumer);
    Py_XDECREF(self->factory);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(route_doc, "route(topic, partition)\n--\n\n"
                        "Deliver the partition's messages here (before it is assigned).");

static PyObject *Intake_route(Intake *self, PyObject *args) {
    const char *topic;
    int partition;
    if (!PyArg_ParseTuple(args, "si:route", &topic, &partition) || check_open(self) < 0)
        return NULL;
    rd_kafka_queue_t *pq = rk_fn.queue_get_partition(self->rk, topic, partition);
    if (pq == NULL) {
        PyErr_Format(PyExc_RuntimeError, "Intake: no queue for %s[%d]", topic, partition);
        return NULL;
    }
    rk_fn.queue_forward(pq, self->queue);
    rk_fn.queue_destroy(pq); /* the forwarding stays with the partition's queue */
    Py_RETURN_NONE;
}

PyDoc_STRVAR(fetch_doc, "fetch(max_messages, timeout)\n--\n\n"
                        "Drop the last batch, wait up to timeout seconds for the next; its length.");

static PyObject *Intake_fetch(Intake *self, PyObject *args) {
    Py_ssize_t want;
    double timeout;
    if (!PyArg_ParseTuple(args, "nd:fetch", &want, &timeout) || check_open(self) < 0)
        return NULL;
    if (want < 1) {
        PyErr_SetString(PyExc_ValueError, "Intake.fetch: max_messages must be at least 1");
        return NULL;
    }
    if (want > self->cap) {
        rd_kafka_message_t **grown = PyMem_Realloc(self->msgs, (size_t)want * sizeof(*grown));
        if (grown == NULL)
            return PyErr_NoMemory();
        self->msgs = grown;
        self->cap = want;
    }
    int ms = timeout <= 0 ? 0 : (int)(timeout * 1000.0 + 0.5);
    Py_ssize_t got;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS drop_messages(self);
    got = rk_fn.consume_batch_queue(self->queue, ms, self->msgs, (size_t)want);
    Py_END_ALLOW_THREADS self->busy = 0;
    if (got < 0) {
        PyErr_SetString(PyExc_RuntimeError, "Intake.fetch: librdkafka refused the batch read");
        return NULL;
    }
    self->n = got;
    return PyLong_FromSsize_t(got);
}

PyDoc_STRVAR(close_doc, "close()\n--\n\nDrop the last batch and the queue; before the consumer's close().");

static PyObject *Intake_close(Intake *self, PyObject *ignored) {
    if (check_idle(self) < 0)
        return NULL;
    if (self->consumer != NULL)
        close_queue(self);
    Py_RETURN_NONE;
}

static Py_ssize_t Intake_len(Intake *self) { return self->n; }

static PyObject *bytes_or_none(const void *p, size_t n) {
    if (p == NULL)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
}

/* Kafka's varint (zigzag) of n at out; its length. */
static int zigzag_varint(int64_t n, uint8_t out[10]) {
    uint64_t z = ((uint64_t)n << 1) ^ (uint64_t)(n >> 63);
    int i = 0;
    while (z >= 0x80) {
        out[i++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    out[i++] = (uint8_t)z;
    return i;
}

/*
 * 1 when a message surely has no headers, told from its record's bytes.
 *
 * Why: librdkafka keeps a consumed record's headers unparsed, and every
 * rd_kafka_message_headers() call parses them again through a fresh
 * zeroed buffer, also for a record with none (its header count, 0, is
 * still a byte to parse): about 1 us per record, a quarter of the
 * consuming thread of a backup of 1 KiB records (bench/README.rst).
 *
 * How it is safe: librdkafka points a v2 record's key and value into the
 * fetched batch itself, where the value is followed by the record's header
 * count (a varint; 0 is the byte 0x00). The count is read only when the
 * message came from a v2 batch (a leader epoch, which older message sets
 * lack) and the bytes before the value are that record's own (its length
 * varint, after the key's last byte or the null key's -1), so a value held
 * anywhere else is never read past. Any other case asks librdkafka.
 */
static int surely_headerless(const rd_kafka_message_t *m) {
    const uint8_t *v = m->payload;
    if (v == NULL || m->err || rk_fn.message_leader_epoch(m) < 0)
        return 0;
    uint8_t varint[10];
    int n = zigzag_varint((int64_t)m->len, varint);
    for (int i = 0; i < n; i++)
        if (v[i - n] != varint[i])
            return 0;
    if (m->key != NULL ? (const uint8_t *)m->key + m->key_len != v - n : v[-n - 1] != 0x01)
        return 0;
    return v[m->len] == 0x00;
}

/* A message's headers as confluent-kafka gives them: None, or a list of (str, bytes | None). */
static PyObject *headers_of(const rd_kafka_message_t *m) {
    rd_kafka_headers_t *h;
    if (m->err || surely_headerless(m) || rk_fn.message_headers(m, &h) != 0)
        Py_RETURN_NONE;
    size_t count = rk_fn.header_cnt(h);
    PyObject *list = PyList_New((Py_ssize_t)count);
    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        const char *name;
        const void *value;
        size_t size;
        if (rk_fn.header_get_all(h, i, &name, &value, &size) != 0) {
            Py_DECREF(list);
            PyErr_SetString(PyExc_RuntimeError, "Intake: a header went missing");
            return NULL;
        }
        PyObject *pair = Py_BuildValue("(sN)", name, bytes_or_none(value, size));
        if (pair == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, pair);
    }
    return list;
}

/* intake[i]: factory(topic, partition, offset, error code, error text, ts type, ts, key, value, headers). */
static PyObject *Intake_item(Intake *self, Py_ssize_t i) {
    if (check_idle(self) < 0)
        return NULL;
    if (i < 0 || i >= self->n) {
        PyErr_SetString(PyExc_IndexError, "Intake index out of range");
        return NULL;
    }
    const rd_kafka_message_t *m = self->msgs[i];
    int ts_type = 0;
    int64_t ts = rk_fn.message_timestamp(m, &ts_type);
    PyObject *errtext = Py_None, *topic = Py_None;
    Py_INCREF(errtext);
    Py_INCREF(topic);
    if (m->err) {
        Py_DECREF(errtext);
        errtext = m->payload ? PyUnicode_DecodeUTF8(m->payload, (Py_ssize_t)m->len, "replace")
                             : PyUnicode_FromString(rk_fn.err2str(m->err));
    }
    if (m->rkt != NULL) {
        Py_DECREF(topic);
        topic = PyUnicode_FromString(rk_fn.topic_name(m->rkt));
    }
    PyObject *headers = headers_of(m);
    PyObject *key = m->err ? (Py_INCREF(Py_None), Py_None) : bytes_or_none(m->key, m->key_len);
    PyObject *value = m->err ? (Py_INCREF(Py_None), Py_None) : bytes_or_none(m->payload, m->len);
    if (errtext == NULL || topic == NULL || headers == NULL || key == NULL || value == NULL) {
        Py_XDECREF(errtext);
        Py_XDECREF(topic);
        Py_XDECREF(headers);
        Py_XDECREF(key);
        Py_XDECREF(value);
        return NULL;
    }
    return PyObject_CallFunction(self->factory, "NiLiNiLNNN", topic, (int)m->partition,
                                 (long long)m->offset, m->err, errtext, ts_type, (long long)ts, key,
                                 value, headers);
}

/* -- packing ----------------------------------------------------------------------------- */

static int put_raw_bin(Out *o, const void *p, size_t n) {
    if (p == NULL) {
        if (out_reserve(o, 1) < 0)
            return -1;
        put_u8(o, 0xc0);
        return 1;
    }
    if (n > 0xffffffffULL)
        return 0;
    if (out_reserve(o, HEAD_ROOM + (Py_ssize_t)n) < 0)
        return -1;
    put_bin_head(o, (Py_ssize_t)n);
    memcpy(o->data + o->pos, p, n);
    o->pos += (Py_ssize_t)n;
    return 1;
}

/* A header name is a str to Python: valid UTF-8 (checked as confluent-kafka's decoding would). */
static int valid_name(Out *o, const char *name, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)name[i] >= 0x80) {
            int unlocked = o->unlocked != NULL;
            out_relock(o);
            PyObject *s = PyUnicode_DecodeUTF8(name, (Py_ssize_t)len, NULL);
            Py_XDECREF(s);
            if (s == NULL || (unlocked && out_unlock(o) < 0))
                return -1;
            return 1;
        }
    }
    return 1;
}

static int put_raw_headers(Out *o, const rd_kafka_message_t *m) {
    rd_kafka_headers_t *h;
    if (surely_headerless(m) || rk_fn.message_headers(m, &h) != 0) {
        if (out_reserve(o, 1) < 0)
            return -1;
        put_u8(o, 0xc0);
        return 1;
    }
    size_t count = rk_fn.header_cnt(h);
    if (out_reserve(o, HEAD_ROOM) < 0)
        return -1;
    put_array_head(o, (Py_ssize_t)count);
    for (size_t i = 0; i < count; i++) {
        const char *name;
        const void *value;
        size_t size;
        if (rk_fn.header_get_all(h, i, &name, &value, &size) != 0)
            return 0;
        size_t len = strlen(name);
        if (valid_name(o, name, len) < 0)
            return -1;
        if (out_reserve(o, 1 + HEAD_ROOM + (Py_ssize_t)len) < 0)
            return -1;
        put_u8(o, 0x92);
        put_str_head(o, (Py_ssize_t)len);
        memcpy(o->data + o->pos, name, len);
        o->pos += (Py_ssize_t)len;
        int r = put_raw_bin(o, value, size);
        if (r <= 0)
            return r;
    }
    return 1;
}

/* One record; 1 = packed, 0 = not packable here (nothing written), -1 = error. */
static int put_raw(Out *o, const rd_kafka_message_t *m, Stats *st) {
    Py_ssize_t mark = o->pos;
    int ts_type = 0;
    int64_t ts = rk_fn.message_timestamp(m, &ts_type);
    if (out_reserve(o, 1 + 3 * HEAD_ROOM) < 0)
        return -1;
    put_record_head(o, m->offset, ts, ts_type);
    int r = put_raw_bin(o, m->key, m->key_len);
    if (r > 0)
        r = put_raw_bin(o, m->payload, m->len);
    if (r > 0)
        r = put_raw_headers(o, m);
    if (r <= 0) {
        o->pos = mark;
        return r;
    }
    stats_note(st, m->offset, ts);
    return 1;
}

/* The packing loop; runs with or without the GIL (o->unlocked says which). 0, or -1 with an
 * exception (set with the GIL taken back for it). */
static int pack_loop(Intake *self, Py_ssize_t i, Py_ssize_t stop, Out *o, Py_ssize_t limit,
                     const char *want, Py_ssize_t want_len, int64_t end_offset, long partition,
                     Stats *st, int *reason, Py_ssize_t *next) {
    const rd_kafka_topic_t *same = NULL; /* a topic handle already seen to be ``topic`` */
    for (; i < stop; i++) {
        const rd_kafka_message_t *m = self->msgs[i];
        if (o->pos >= limit) {
            *reason = STOP_FULL;
            break;
        }
        if (m->err) {
            *reason = STOP_EVENT;
            break;
        }
        if (m->partition != partition) {
            *reason = STOP_OTHER;
            break;
        }
        if (want != NULL && m->rkt != same) {
            const char *name = rk_fn.topic_name(m->rkt);
            if (strlen(name) != (size_t)want_len || memcmp(name, want, (size_t)want_len) != 0) {
                *reason = STOP_OTHER;
                break;
            }
            same = m->rkt;
        }
        if (end_offset >= 0 && m->offset >= end_offset) {
            *reason = STOP_BOUND;
            break;
        }
        int r = put_raw(o, m, st);
        if (r < 0)
            return -1;
        if (r == 0) {
            *reason = STOP_UNUSUAL;
            break;
        }
    }
    *next = i;
    return 0;
}

/* Shorter runs keep the GIL: a release and retake (and a wait, if another thread took it
 * meanwhile) is not worth it for a handful of records. Not tuned: the backup's runs are
 * hundreds of records long. */
#define UNLOCK_FROM 32

/*
 * Why without the GIL: the packing is most of the consuming thread's work, and the
 * compression threads need the GIL for a moment after every block; held here, they
 * waited for it about as long as they compressed (bench/README.rst, session 16). The
 * bytearray stays exported meanwhile so that no other thread can resize it, and the
 * intake is marked busy so that no other thread can fetch or close it.
 */
int intake_pack(PyObject *intake, Py_ssize_t start, Py_ssize_t stop, Out *o, Py_ssize_t limit,
                PyObject *topic, long partition, int64_t end_offset, Stats *st, int *reason,
                Py_ssize_t *next) {
    Intake *self = (Intake *)intake;
    const char *want = NULL;
    Py_ssize_t want_len = 0;
    if (check_open(self) < 0)
        return -1;
    if (topic != Py_None && (want = PyUnicode_AsUTF8AndSize(topic, &want_len)) == NULL)
        return -1;
    if (stop > self->n)
        stop = self->n;
    if (stop - start < UNLOCK_FROM)
        return pack_loop(self, start, stop, o, limit, want, want_len, end_offset, partition, st,
                         reason, next);
    self->busy = 1; /* before the GIL goes: no other thread may see the intake idle */
    int r = out_unlock(o);
    if (r == 0)
        r = pack_loop(self, start, stop, o, limit, want, want_len, end_offset, partition, st,
                      reason, next);
    out_relock(o); /* also where a failure took the GIL back already */
    self->busy = 0;
    return r;
}

/* -- the type ---------------------------------------------------------------------------- */

static PyMethodDef Intake_methods[] = {
    {"route", (PyCFunction)Intake_route, METH_VARARGS, route_doc},
    {"fetch", (PyCFunction)Intake_fetch, METH_VARARGS, fetch_doc},
    {"close", (PyCFunction)Intake_close, METH_NOARGS, close_doc},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Intake_as_sequence = {
    .sq_length = (lenfunc)Intake_len,
    .sq_item = (ssizeargfunc)Intake_item,
};

PyTypeObject IntakeType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "libkb.format._packer.Intake",
    .tp_basicsize = sizeof(Intake),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Intake(consumer, consumer_type, factory, library): a consumer's messages read in C.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Intake_init,
    .tp_dealloc = (destructor)Intake_dealloc,
    .tp_methods = Intake_methods,
    .tp_as_sequence = &Intake_as_sequence,
};

int intake_add_type(PyObject *module) {
    if (PyType_Ready(&IntakeType) < 0)
        return -1;
    Py_INCREF(&IntakeType);
    if (PyModule_AddObject(module, "Intake", (PyObject *)&IntakeType) < 0) {
        Py_DECREF(&IntakeType);
        return -1;
    }
    return 0;
}
