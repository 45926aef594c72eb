/* Decodes the record area of the Rust kafka-backup's segments into libkb's record tuples.
 *
 * The C half of libkb/format/rust_segment.py (decode_records), which is also the
 * reference: both return the same records, stop at the same place and raise
 * ValueError on the same input (tests compare them). One call decodes a run of
 * records, so a restore spends a call per ~1 MiB instead of a dozen per record.
 *
 * A record (all integers little-endian):
 *   u32 len | i64 timestamp | i64 offset | i32 key_len (-1 null) | key
 *   | i32 value_len (-1 null) | value | u16 header_count
 *   | header_count x (u16 name_len | name (UTF-8) | i32 value_len (-1 null) | value)
 * where len counts the bytes after itself.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MIN_RECORD 26 /* timestamp, offset, key_len, value_len, header_count */
#define MAX_RECORD (1u << 30) /* rust_segment.MAX_RECORD_BYTES: a longer stated length is corrupt */

static PyObject *create_time; /* 1: the timestamp type the records get (CreateTime) */

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static int64_t rd64(const unsigned char *p) {
    return (int64_t)((uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32));
}

typedef struct {
    const unsigned char *name;
    Py_ssize_t name_len;
    const unsigned char *value; /* NULL: a null value */
    Py_ssize_t value_len;
} header_t;

static int is_name(const header_t *h, const char *name) {
    Py_ssize_t n = (Py_ssize_t)strlen(name);
    return h->name_len == n && memcmp(h->name, name, (size_t)n) == 0;
}

static int holds_i64(const header_t *h, int64_t v) {
    return h->value != NULL && h->value_len == 8 && rd64(h->value) == v;
}

/* How many trailing headers are the tool's own (x-original-offset and
 * x-original-timestamp holding this record's offset and timestamp, then
 * x-source-cluster if present): 0, 2 or 3. ``last`` holds the last three. */
static int tool_tail(const header_t *last, int count, int64_t offset, int64_t ts) {
    const header_t *a = &last[0], *b = &last[1], *c = &last[2]; /* third-, second-, last */
    if (count >= 3 && is_name(c, "x-source-cluster") && c->value != NULL && is_name(a, "x-original-offset") &&
        holds_i64(a, offset) && is_name(b, "x-original-timestamp") && holds_i64(b, ts))
        return 3;
    if (count >= 2 && is_name(b, "x-original-offset") && holds_i64(b, offset) &&
        is_name(c, "x-original-timestamp") && holds_i64(c, ts))
        return 2;
    return 0;
}

/* Walk one record's headers from ``q`` (after header_count), checking they fit in ``end``;
 * keep the last three in ``last``. Returns the end of the headers, or NULL (error set). */
static const unsigned char *scan_headers(const unsigned char *q, const unsigned char *end, int count,
                                         header_t *last, Py_ssize_t at) {
    for (int i = 0; i < count; i++) {
        header_t h;
        if (end - q < 2) goto short_;
        h.name_len = rd16(q);
        q += 2;
        if (end - q < (Py_ssize_t)h.name_len + 4) goto short_;
        h.name = q;
        q += h.name_len;
        int32_t vlen = (int32_t)rd32(q);
        q += 4;
        if (vlen < -1 || end - q < (Py_ssize_t)(vlen < 0 ? 0 : vlen)) goto short_;
        h.value = vlen < 0 ? NULL : q;
        h.value_len = vlen < 0 ? 0 : vlen;
        q += h.value_len;
        last[0] = last[1];
        last[1] = last[2];
        last[2] = h;
    }
    return q;
short_:
    PyErr_Format(PyExc_ValueError, "the record at byte %zd of the record area: its headers run past its length", at);
    return NULL;
}

/* The headers list (the first ``keep`` of ``count``), None when it would be empty. */
static PyObject *build_headers(const unsigned char *q, int keep) {
    if (keep == 0) Py_RETURN_NONE;
    PyObject *list = PyList_New(keep);
    if (list == NULL) return NULL;
    for (int i = 0; i < keep; i++) {
        Py_ssize_t name_len = rd16(q);
        q += 2;
        PyObject *name = PyUnicode_DecodeUTF8((const char *)q, name_len, "replace");
        q += name_len;
        int32_t vlen = (int32_t)rd32(q);
        q += 4;
        PyObject *value;
        if (vlen < 0) {
            value = Py_None;
            Py_INCREF(value);
        } else {
            value = PyBytes_FromStringAndSize((const char *)q, vlen);
            q += vlen;
        }
        PyObject *pair = (name && value) ? PyTuple_Pack(2, name, value) : NULL;
        Py_XDECREF(name);
        Py_XDECREF(value);
        if (pair == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, pair);
    }
    return list;
}

static PyObject *bytes_or_none(const unsigned char *p, int32_t len) {
    if (len < 0) Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)p, len);
}

/* One record at ``p`` (after its length field) of ``len`` bytes, as a tuple. */
static PyObject *decode_one(const unsigned char *p, uint32_t len, Py_ssize_t at, int64_t *prev, int strip,
                            Py_ssize_t *tools) {
    const unsigned char *end = p + len, *q = p + 20;
    int64_t ts = rd64(p), offset = rd64(p + 8);
    if (offset <= *prev) {
        PyErr_Format(PyExc_ValueError, "the record at byte %zd of the record area has offset %lld, which does not follow %lld",
                     at, (long long)offset, (long long)*prev);
        return NULL;
    }
    int32_t klen = (int32_t)rd32(p + 16);
    if (klen < -1 || end - q < (Py_ssize_t)(klen < 0 ? 0 : klen) + 6) goto short_;
    const unsigned char *key = q;
    q += klen < 0 ? 0 : klen;
    int32_t vlen = (int32_t)rd32(q);
    q += 4;
    if (vlen < -1 || end - q < (Py_ssize_t)(vlen < 0 ? 0 : vlen) + 2) goto short_;
    const unsigned char *value = q;
    q += vlen < 0 ? 0 : vlen;
    int count = rd16(q);
    q += 2;
    const unsigned char *headers = q;
    header_t last[3];
    memset(last, 0, sizeof last);
    q = scan_headers(q, end, count, last, at);
    if (q == NULL) return NULL;
    if (q != end) {
        PyErr_Format(PyExc_ValueError, "the record at byte %zd of the record area has %zd bytes past its headers", at,
                     (Py_ssize_t)(end - q));
        return NULL;
    }
    int tail = tool_tail(last, count, offset, ts);
    if (tail) *tools += 1;
    *prev = offset;
    PyObject *k = bytes_or_none(key, klen), *v = bytes_or_none(value, vlen);
    PyObject *h = (k && v) ? build_headers(headers, strip ? count - tail : count) : NULL;
    PyObject *o = h ? PyLong_FromLongLong(offset) : NULL;
    PyObject *t = o ? PyLong_FromLongLong(ts) : NULL;
    PyObject *rec = NULL;
    if (t) {
        rec = PyTuple_New(6);
        if (rec) {
            Py_INCREF(create_time);
            PyTuple_SET_ITEM(rec, 0, o);
            PyTuple_SET_ITEM(rec, 1, t);
            PyTuple_SET_ITEM(rec, 2, create_time);
            PyTuple_SET_ITEM(rec, 3, k);
            PyTuple_SET_ITEM(rec, 4, v);
            PyTuple_SET_ITEM(rec, 5, h);
            return rec;
        }
    }
    Py_XDECREF(k);
    Py_XDECREF(v);
    Py_XDECREF(h);
    Py_XDECREF(o);
    Py_XDECREF(t);
    return NULL;
short_:
    PyErr_Format(PyExc_ValueError, "the record at byte %zd of the record area: its key or value runs past its length", at);
    return NULL;
}

/* decode_records(buf, pos, end, max_bytes, max_count, prev, strip, base) -> (records, pos, tool_records)
 * ``base``: where ``buf`` starts in the record area (for the byte positions errors name). */
static PyObject *decode_records(PyObject *self, PyObject *args) {
    PyObject *buf;
    Py_ssize_t pos, end, max_bytes, max_count, base = 0;
    long long prev_arg;
    int strip;
    if (!PyArg_ParseTuple(args, "OnnnnLp|n", &buf, &pos, &end, &max_bytes, &max_count, &prev_arg, &strip,
                          &base))
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (end > view.len) end = view.len;
    if (pos < 0 || pos > end) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "position outside the buffer");
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)view.buf;
    int64_t prev = (int64_t)prev_arg;
    Py_ssize_t start = pos, tools = 0, count = 0;
    PyObject *list = PyList_New(0);
    if (list == NULL) goto fail;
    while (count < max_count && pos - start < max_bytes && end - pos >= 4) {
        uint32_t len = rd32(b + pos);
        if (len < MIN_RECORD) {
            PyErr_Format(PyExc_ValueError, "the record at byte %zd of the record area states a length of %u bytes, too short",
                         base + pos, len);
            goto fail;
        }
        if (len > MAX_RECORD) {
            PyErr_Format(PyExc_ValueError,
                         "the record at byte %zd of the record area states a length of %u bytes, more than %u",
                         base + pos, len, MAX_RECORD);
            goto fail;
        }
        if ((Py_ssize_t)len > end - pos - 4) break; /* not all here yet */
        PyObject *rec = decode_one(b + pos + 4, len, base + pos, &prev, strip, &tools);
        if (rec == NULL) goto fail;
        int failed = PyList_Append(list, rec);
        Py_DECREF(rec);
        if (failed) goto fail;
        pos += 4 + (Py_ssize_t)len;
        count++;
    }
    PyBuffer_Release(&view);
    PyObject *out = Py_BuildValue("(Nnn)", list, pos, tools);
    return out;
fail:
    Py_XDECREF(list);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"decode_records", decode_records, METH_VARARGS,
     "decode_records(buf, pos, end, max_bytes, max_count, prev, strip, base=0) -> (records, pos, tool_records)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rustrec", NULL, -1, methods};

PyMODINIT_FUNC PyInit__rustrec(void) {
    create_time = PyLong_FromLong(1);
    if (create_time == NULL) return NULL;
    return PyModule_Create(&module);
}
