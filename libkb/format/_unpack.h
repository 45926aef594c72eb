/*
 * The msgpack reader of a decoded block, for the restore's C produce path
 * (_produce.c): the records as pointers into the block, checked the way the
 * Python readers check them.
 *
 * A block decodes to its records back to back, each the array
 * [offset, timestamp, timestamp_type, key, value, headers] (docs/format.rst).
 * The reference is libkb.format.segment.block_records with
 * libkb.format.records.plain_records and as_header: msgpack.unpackb(raw=False)
 * of the block, then the shape and type checks. This reader accepts exactly
 * what they accept (any msgpack width of an array, integer, bin or str;
 * integers within int64; key and value bin or nil; headers nil or an array of
 * [str, bin or nil] pairs, the str valid UTF-8 as Python's strict decoder
 * wants it), and also wants what a whole block needs: the stated count,
 * consecutive offsets from the stated first to the stated last, nothing
 * after the last record. Anything else: the caller decodes the block in
 * Python, which says what is wrong or hands out records one by one.
 *
 * Pure C on memory the caller holds: it runs without the GIL.
 */
#ifndef LIBKB_UNPACK_H
#define LIBKB_UNPACK_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const uint8_t *p, *end;
} Rd;

static inline int rd_need(const Rd *r, size_t n) { return (size_t)(r->end - r->p) >= n; }

static inline uint64_t rd_be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* A length-prefixed item's length: its width from the type byte (1, 2 or 4 bytes). */
static inline int rd_len(Rd *r, int width, size_t *len) {
    if (!rd_need(r, (size_t)width))
        return -1;
    *len = (size_t)rd_be(r->p, width);
    r->p += width;
    return 0;
}

static int rd_array(Rd *r, size_t *n) {
    if (!rd_need(r, 1))
        return -1;
    uint8_t b = *r->p++;
    if ((b & 0xf0) == 0x90) {
        *n = b & 0x0f;
        return 0;
    }
    if (b == 0xdc)
        return rd_len(r, 2, n);
    if (b == 0xdd)
        return rd_len(r, 4, n);
    return -1;
}

static int rd_int64(Rd *r, int64_t *v) {
    if (!rd_need(r, 1))
        return -1;
    uint8_t b = *r->p++;
    if (b <= 0x7f || b >= 0xe0) { /* positive and negative fixint */
        *v = (int8_t)b;
        return 0;
    }
    static const int widths[] = {1, 2, 4, 8}; /* 0xcc-0xcf unsigned, 0xd0-0xd3 signed */
    int is_unsigned = b >= 0xcc && b <= 0xcf, is_signed = b >= 0xd0 && b <= 0xd3;
    if (!is_unsigned && !is_signed)
        return -1;
    int w = widths[(b - (is_unsigned ? 0xcc : 0xd0))];
    if (!rd_need(r, (size_t)w))
        return -1;
    uint64_t u = rd_be(r->p, w);
    r->p += w;
    if (is_unsigned) {
        if (u > (uint64_t)INT64_MAX)
            return -1;
        *v = (int64_t)u;
    } else if (w == 8) {
        *v = (int64_t)u;
    } else {
        int shift = 64 - 8 * w; /* sign-extend */
        *v = (int64_t)(u << shift) >> shift;
    }
    return 0;
}

/* bin or nil: *ptr NULL for nil (an empty bin has a pointer and length 0). */
static int rd_bin_or_nil(Rd *r, const uint8_t **ptr, size_t *len) {
    if (!rd_need(r, 1))
        return -1;
    uint8_t b = *r->p++;
    if (b == 0xc0) {
        *ptr = NULL;
        *len = 0;
        return 0;
    }
    if (b < 0xc4 || b > 0xc6 || rd_len(r, 1 << (b - 0xc4), len) < 0 || !rd_need(r, *len))
        return -1;
    *ptr = r->p;
    r->p += *len;
    return 0;
}

/* Well-formed UTF-8 (Unicode table 3-7): what Python's strict decoder accepts. */
static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int more;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf)
            more = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            lo = c == 0xe0 ? 0xa0 : 0x80;
            hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf; /* up to U+10FFFF */
        } else
            return 0;
        if (n - i <= (size_t)more || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (int k = 2; k <= more; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return 0;
        i += (size_t)more + 1;
    }
    return 1;
}

static int rd_str(Rd *r, const uint8_t **ptr, size_t *len) {
    if (!rd_need(r, 1))
        return -1;
    uint8_t b = *r->p++;
    if ((b & 0xe0) == 0xa0)
        *len = b & 0x1f;
    else if (b < 0xd9 || b > 0xdb || rd_len(r, 1 << (b - 0xd9), len) < 0)
        return -1;
    if (!rd_need(r, *len) || !utf8_valid(r->p, *len))
        return -1;
    *ptr = r->p;
    r->p += *len;
    return 0;
}

#endif
