/*
 * libkb.format._packer: packs Kafka messages into a block's record bytes.
 *
 * The optional C half of libkb.format.packer.pack_messages (see that module
 * for the contract; the pure-Python version there is the reference and the
 * fallback). Backup's consuming thread spends most of its time turning
 * confluent-kafka Message objects into msgpack records; done here, a record
 * costs one C loop iteration instead of a Python tuple, six bound-method
 * calls from bytecode and a msgpack call.
 *
 * Each record is a msgpack array [offset, timestamp, timestamp_type, key,
 * value, headers] encoded exactly as msgpack.Packer(use_bin_type=True) does
 * (smallest integer form, bin for bytes, str for header names); the tests
 * compare the two byte for byte.
 *
 * The same record bytes from librdkafka's own messages, without Message
 * objects: _intake.c (libkb.backup.intake), which pack_messages dispatches to.
 * A restore's records produced without Producer.produce() per record:
 * _produce.c (libkb.restore.direct).
 *
 * Also here, for the segment writer and reader (libkb.format.checksum): a
 * CRC-32 that keeps the GIL, zlib's crc32_combine, and uninitialised
 * bytearrays for block buffers; and glibc's mallopt() for libkb.cli.alloctune.
 */
#include "_msgpack.h"
#include "_intake.h"
#include "_produce.h"
#include <zlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static PyObject *s_error, *s_partition, *s_topic, *s_offset, *s_timestamp, *s_key, *s_value, *s_headers;

/* bytes or None; 1 = packed, 0 = not a type handled here, -1 = error. */
static int put_bin_or_nil(Out *o, PyObject *v) {
    if (v == Py_None) {
        if (out_reserve(o, 1) < 0)
            return -1;
        put_u8(o, 0xc0);
        return 1;
    }
    if (!PyBytes_CheckExact(v))
        return 0;
    Py_ssize_t n = PyBytes_GET_SIZE(v);
    if (n > 0xffffffffLL)
        return 0;
    if (out_reserve(o, HEAD_ROOM + n) < 0)
        return -1;
    put_bin_head(o, n);
    memcpy(o->data + o->pos, PyBytes_AS_STRING(v), (size_t)n);
    o->pos += n;
    return 1;
}

/* None or a list of (str, bytes|None) pairs; same return convention. */
static int put_headers(Out *o, PyObject *h) {
    if (h == Py_None) {
        if (out_reserve(o, 1) < 0)
            return -1;
        put_u8(o, 0xc0);
        return 1;
    }
    if (!PyList_CheckExact(h))
        return 0;
    Py_ssize_t n = PyList_GET_SIZE(h);
    if (out_reserve(o, HEAD_ROOM) < 0)
        return -1;
    put_array_head(o, n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(h, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2)
            return 0;
        PyObject *name = PyTuple_GET_ITEM(pair, 0);
        if (!PyUnicode_CheckExact(name))
            return 0;
        Py_ssize_t len;
        const char *utf8 = PyUnicode_AsUTF8AndSize(name, &len);
        if (utf8 == NULL) {
            PyErr_Clear(); /* e.g. lone surrogates: msgpack refuses them too; let it say so */
            return 0;
        }
        if (out_reserve(o, 1 + HEAD_ROOM + len) < 0)
            return -1;
        put_u8(o, 0x92);
        put_str_head(o, len);
        memcpy(o->data + o->pos, utf8, (size_t)len);
        o->pos += len;
        int r = put_bin_or_nil(o, PyTuple_GET_ITEM(pair, 1));
        if (r <= 0)
            return r;
    }
    return 1;
}

static PyObject *call0(PyObject *obj, PyObject *name) {
    PyObject *args[1] = {obj};
    return PyObject_VectorcallMethod(name, args, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/*
 * The getters of the message type last seen, as C functions: confluent-kafka's
 * Message methods are METH_NOARGS C methods, so msg.key() is key(msg, NULL)
 * once the type is known. Looking each name up per record (type dict, method
 * descriptor, vectorcall) cost about a tenth of the consuming thread's time.
 * Any other type (a Python subclass, a test double) goes through call0.
 */
enum { M_ERROR, M_PARTITION, M_TOPIC, M_OFFSET, M_TIMESTAMP, M_KEY, M_VALUE, M_HEADERS, M_COUNT };
static PyObject **m_names[M_COUNT] = {&s_error, &s_partition, &s_topic, &s_offset,
                                      &s_timestamp, &s_key, &s_value, &s_headers};
static PyTypeObject *m_type;   /* strong reference, or NULL */
static PyCFunction m_func[M_COUNT];

/* Learn the getters of type(msg) if they are all C METH_NOARGS methods; else forget the last type. */
static void learn_type(PyObject *msg) {
    PyTypeObject *type = Py_TYPE(msg);
    if (type == m_type)
        return;
    Py_CLEAR(m_type);
    PyCFunction found[M_COUNT];
    for (int i = 0; i < M_COUNT; i++) {
        PyObject *d = PyObject_GetAttr((PyObject *)type, *m_names[i]);
        if (d == NULL) {
            PyErr_Clear();
            return;
        }
        int ok = Py_IS_TYPE(d, &PyMethodDescr_Type) &&
                 ((PyMethodDescrObject *)d)->d_method->ml_flags == METH_NOARGS;
        if (ok)
            found[i] = ((PyMethodDescrObject *)d)->d_method->ml_meth;
        Py_DECREF(d);
        if (!ok)
            return;
    }
    if (type->tp_dictoffset != 0)
        return; /* instances could shadow a method */
    memcpy(m_func, found, sizeof(found));
    Py_INCREF(type);
    m_type = type;
}

static PyObject *get(PyObject *msg, int which) {
    if (Py_TYPE(msg) == m_type)
        return m_func[which](msg, NULL);
    return call0(msg, *m_names[which]);
}

static int as_int64(PyObject *v, int64_t *out) {
    if (!PyLong_CheckExact(v))
        return 0;
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (overflow)
        return 0;
    *out = (int64_t)x;
    return 1;
}

/*
 * Pack msgs[start], msgs[start+1], ... into out; 1 = packed, 0 = stop with
 * *reason set (nothing written for that message), -1 = error.
 */
static int pack_one(PyObject *msg, Out *o, PyObject *topic, long partition, int64_t end_offset,
                    Stats *st, int *reason) {
    PyObject *err = NULL, *v = NULL, *ts = NULL, *key = NULL, *value = NULL, *headers = NULL;
    int64_t offset, timestamp, ts_type;
    Py_ssize_t mark = o->pos;
    int r = -1;

    if (!(err = get(msg, M_ERROR)))
        goto done;
    if (err != Py_None) {
        *reason = STOP_EVENT;
        r = 0;
        goto done;
    }
    if (!(v = get(msg, M_PARTITION)))
        goto done;
    {
        long p = PyLong_Check(v) ? PyLong_AsLong(v) : -2;
        if (p == -1 && PyErr_Occurred())
            goto done;
        Py_CLEAR(v);
        if (p != partition) {
            *reason = STOP_OTHER;
            r = 0;
            goto done;
        }
    }
    if (topic != Py_None) {
        if (!(v = get(msg, M_TOPIC)))
            goto done;
        int same = v == topic ? 1 : PyObject_RichCompareBool(v, topic, Py_EQ);
        Py_CLEAR(v);
        if (same < 0)
            goto done;
        if (!same) {
            *reason = STOP_OTHER;
            r = 0;
            goto done;
        }
    }
    if (!(v = get(msg, M_OFFSET)))
        goto done;
    r = as_int64(v, &offset);
    Py_CLEAR(v);
    if (r <= 0) {
        if (r == 0)
            *reason = STOP_UNUSUAL;
        goto done;
    }
    r = -1;
    if (end_offset >= 0 && offset >= end_offset) {
        *reason = STOP_BOUND;
        r = 0;
        goto done;
    }
    if (!(ts = get(msg, M_TIMESTAMP)))
        goto done;
    if (!PyTuple_CheckExact(ts) || PyTuple_GET_SIZE(ts) != 2) {
        *reason = STOP_UNUSUAL;
        r = 0;
        goto done;
    }
    {
        int a = as_int64(PyTuple_GET_ITEM(ts, 0), &ts_type);
        int b = a > 0 ? as_int64(PyTuple_GET_ITEM(ts, 1), &timestamp) : a;
        if (b <= 0) {
            if (b == 0) {
                *reason = STOP_UNUSUAL;
                r = 0;
            }
            goto done;
        }
    }
    if (!(key = get(msg, M_KEY)) || !(value = get(msg, M_VALUE)) || !(headers = get(msg, M_HEADERS)))
        goto done;

    if (out_reserve(o, 1 + 3 * HEAD_ROOM) < 0)
        goto done;
    put_record_head(o, offset, timestamp, ts_type);
    if ((r = put_bin_or_nil(o, key)) > 0 && (r = put_bin_or_nil(o, value)) > 0)
        r = put_headers(o, headers);
    if (r <= 0) {
        o->pos = mark;
        if (r == 0)
            *reason = STOP_UNUSUAL;
        goto done;
    }
    stats_note(st, offset, timestamp);
    r = 1;
done:
    Py_XDECREF(err);
    Py_XDECREF(v);
    Py_XDECREF(ts);
    Py_XDECREF(key);
    Py_XDECREF(value);
    Py_XDECREF(headers);
    if (r < 0)
        o->pos = mark;
    return r;
}

PyDoc_STRVAR(pack_messages_doc,
             "pack_messages(msgs, start, out, pos, limit, topic, partition, end_offset, stop=None)\n"
             "--\n\n"
             "C version of libkb.format.packer.pack_messages; msgs is a list of Messages or an Intake.");

/* Pack msgs[start:stop] (a list of Message objects); 0 or -1 with an exception. */
static int pack_list(PyObject *msgs, Py_ssize_t start, Py_ssize_t stop, Out *o, Py_ssize_t limit,
                     PyObject *topic, long partition, int64_t end_offset, Stats *st, int *reason,
                     Py_ssize_t *next) {
    Py_ssize_t i = start;
    if (i < PyList_GET_SIZE(msgs))
        learn_type(PyList_GET_ITEM(msgs, i));
    while (i < stop && i < PyList_GET_SIZE(msgs)) {
        if (o->pos >= limit) {
            *reason = STOP_FULL;
            break;
        }
        PyObject *msg = PyList_GET_ITEM(msgs, i);
        Py_INCREF(msg);
        int r = pack_one(msg, o, topic, partition, end_offset, st, reason);
        Py_DECREF(msg);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        i++;
    }
    *next = i;
    return 0;
}

static PyObject *pack_messages(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8 && nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "pack_messages takes 8 or 9 arguments");
        return NULL;
    }
    PyObject *msgs = args[0], *topic = args[5];
    int is_list = PyList_CheckExact(msgs);
    if (!(is_list || Intake_Check(msgs)) || !PyByteArray_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "pack_messages: msgs must be a list or an Intake, and out a bytearray");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    Py_ssize_t pos = PyLong_AsSsize_t(args[3]);
    Py_ssize_t limit = PyLong_AsSsize_t(args[4]);
    long partition = PyLong_AsLong(args[6]);
    long long end_offset = PyLong_AsLongLong(args[7]);
    Py_ssize_t stop = nargs == 9 && args[8] != Py_None ? PyLong_AsSsize_t(args[8]) : PY_SSIZE_T_MAX;
    if (PyErr_Occurred())
        return NULL;
    Out o = {.buf = args[2], .data = PyByteArray_AS_STRING(args[2]), .pos = pos,
             .cap = PyByteArray_GET_SIZE(args[2])};
    if (pos < 0 || pos > o.cap || start < 0) {
        PyErr_SetString(PyExc_ValueError, "pack_messages: start or pos out of range");
        return NULL;
    }
    Stats st = {0, -1, -1, -1, -1};
    int reason = STOP_END;
    Py_ssize_t i = start;
    int r = is_list ? pack_list(msgs, start, stop, &o, limit, topic, partition, end_offset, &st, &reason, &i)
                    : intake_pack(msgs, start, stop, &o, limit, topic, partition, end_offset, &st, &reason, &i);
    if (r < 0)
        return NULL;
    if (reason == STOP_END && o.pos >= limit && i > start)
        reason = STOP_FULL;
    return Py_BuildValue("(nnnLLLLi)", i, o.pos, st.count, (long long)st.first, (long long)st.last,
                         (long long)st.min_ts, (long long)st.max_ts, reason);
}

/*
 * CRC-32 that keeps the GIL. zlib.crc32 releases it for buffers over 5 KiB;
 * on a busy process the thread then waits up to the switch interval (5 ms)
 * to get it back, which is 30x the 0.15 ms a 1 MiB block takes to checksum.
 */
PyDoc_STRVAR(crc32_doc, "crc32(data, value=0)\n--\n\nzlib.crc32 without releasing the GIL.");

static PyObject *crc32_keep_gil(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "crc32 takes 1 or 2 arguments");
        return NULL;
    }
    unsigned long crc = 0;
    if (nargs == 2) {
        crc = PyLong_AsUnsignedLongMask(args[1]) & 0xffffffffUL;
        if (PyErr_Occurred())
            return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *p = view.buf;
    Py_ssize_t left = view.len;
    while (left > 0) {
        uInt n = left > (Py_ssize_t)0x40000000 ? 0x40000000U : (uInt)left;
        crc = crc32(crc, p, n);
        p += n;
        left -= n;
    }
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc & 0xffffffffUL);
}

PyDoc_STRVAR(crc32_combine_doc,
             "crc32_combine(crc1, crc2, len2)\n--\n\n"
             "The CRC-32 of A + B from crc32(A), crc32(B) and len(B) (zlib's crc32_combine).");

static PyObject *crc32_combine_(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "crc32_combine takes 3 arguments");
        return NULL;
    }
    unsigned long a = PyLong_AsUnsignedLongMask(args[0]) & 0xffffffffUL;
    unsigned long b = PyLong_AsUnsignedLongMask(args[1]) & 0xffffffffUL;
    long long n = PyLong_AsLongLong(args[2]);
    if (PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "crc32_combine: negative length");
        return NULL;
    }
    return PyLong_FromUnsignedLong(crc32_combine(a, b, (z_off_t)n) & 0xffffffffUL);
}

PyDoc_STRVAR(new_buffer_doc,
             "new_buffer(size)\n--\n\nA bytearray of size bytes, not zero-filled (it is written over).");

static PyObject *new_buffer(PyObject *self, PyObject *arg) {
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "new_buffer: negative size");
        return NULL;
    }
    return PyByteArray_FromStringAndSize(NULL, n);
}

PyDoc_STRVAR(regrow_doc,
             "regrow(buf, size)\n--\n\n"
             "Resize bytearray buf to size bytes, the new bytes not zero-filled (they are written over);\n"
             "within its allocation nothing is copied or written.");

static PyObject *regrow(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyByteArray_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "regrow takes a bytearray and a size");
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[1]);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "regrow: negative size");
        return NULL;
    }
    if (PyByteArray_Resize(args[0], n) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(set_malloc_thresholds_doc,
             "set_malloc_thresholds(mmap_threshold, trim_threshold)\n--\n\n"
             "glibc's mallopt() M_MMAP_THRESHOLD and M_TRIM_THRESHOLD; False where there is no glibc.");

static PyObject *set_malloc_thresholds(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "set_malloc_thresholds takes 2 arguments");
        return NULL;
    }
    long mmap_threshold = PyLong_AsLong(args[0]);
    long trim_threshold = PyLong_AsLong(args[1]);
    if (PyErr_Occurred())
        return NULL;
    if (mmap_threshold < 0 || trim_threshold < 0 || mmap_threshold > INT_MAX || trim_threshold > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "set_malloc_thresholds: thresholds are 0 to 2**31 - 1 bytes");
        return NULL;
    }
#ifdef __GLIBC__
    if (mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) && mallopt(M_TRIM_THRESHOLD, (int)trim_threshold))
        Py_RETURN_TRUE;
#endif
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"pack_messages", (PyCFunction)(void (*)(void))pack_messages, METH_FASTCALL, pack_messages_doc},
    {"crc32", (PyCFunction)(void (*)(void))crc32_keep_gil, METH_FASTCALL, crc32_doc},
    {"crc32_combine", (PyCFunction)(void (*)(void))crc32_combine_, METH_FASTCALL, crc32_combine_doc},
    {"new_buffer", (PyCFunction)new_buffer, METH_O, new_buffer_doc},
    {"regrow", (PyCFunction)(void (*)(void))regrow, METH_FASTCALL, regrow_doc},
    {"set_malloc_thresholds", (PyCFunction)(void (*)(void))set_malloc_thresholds, METH_FASTCALL,
     set_malloc_thresholds_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "libkb.format._packer", "C half of libkb.format.packer and .checksum.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__packer(void) {
#define INTERN(var, text)                                                                          \
    if (!(var = PyUnicode_InternFromString(text)))                                                \
        return NULL;
    INTERN(s_error, "error");
    INTERN(s_partition, "partition");
    INTERN(s_topic, "topic");
    INTERN(s_offset, "offset");
    INTERN(s_timestamp, "timestamp");
    INTERN(s_key, "key");
    INTERN(s_value, "value");
    INTERN(s_headers, "headers");
#undef INTERN
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && (intake_add_type(m) < 0 || produce_add_type(m) < 0))
        Py_CLEAR(m);
    return m;
}
