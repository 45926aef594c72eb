/*
 * The part of librdkafka's public ABI (rdkafka.h) that libkb's C paths use,
 * and how they reach the library confluent-kafka loaded: its functions are
 * looked up (dlsym) there, so there is nothing to link against, and the
 * client handle is read from confluent-kafka's client object (the first
 * field after the object header in every 2.x release; each user checks the
 * handle's type and that its opaque pointer is that object before use).
 *
 * Users: _intake.c (a backup consumer's messages) and _produce.c (a
 * restore's records produced).
 */
#ifndef LIBKB_RDKAFKA_H
#define LIBKB_RDKAFKA_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_queue_s rd_kafka_queue_t;
typedef struct rd_kafka_topic_s rd_kafka_topic_t;
typedef struct rd_kafka_topic_conf_s rd_kafka_topic_conf_t;
typedef struct rd_kafka_headers_s rd_kafka_headers_t;
typedef struct rd_kafka_error_s rd_kafka_error_t;
typedef struct {
    int err;
    rd_kafka_topic_t *rkt;
    int32_t partition;
    void *payload;
    size_t len;
    void *key;
    size_t key_len;
    int64_t offset;
    void *private_;
} rd_kafka_message_t;

#define RD_KAFKA_PRODUCER 0
#define RD_KAFKA_CONSUMER 1
#define RD_KAFKA_MSG_F_COPY 0x2
#define RD_KAFKA_RESP_ERR__QUEUE_FULL (-184)

/* rd_kafka_produceva()'s argument: a value type and its value. */
enum {
    RD_KAFKA_VTYPE_END,
    RD_KAFKA_VTYPE_TOPIC,
    RD_KAFKA_VTYPE_RKT,
    RD_KAFKA_VTYPE_PARTITION,
    RD_KAFKA_VTYPE_VALUE,
    RD_KAFKA_VTYPE_KEY,
    RD_KAFKA_VTYPE_OPAQUE,
    RD_KAFKA_VTYPE_MSGFLAGS,
    RD_KAFKA_VTYPE_TIMESTAMP,
    RD_KAFKA_VTYPE_HEADER,
    RD_KAFKA_VTYPE_HEADERS,
};
typedef struct {
    int vtype;
    union {
        const char *cstr;
        rd_kafka_topic_t *rkt;
        int i;
        int32_t i32;
        int64_t i64;
        struct {
            const void *ptr;
            size_t size;
        } mem;
        struct {
            const char *name;
            const void *val;
            ssize_t size;
        } header;
        rd_kafka_headers_t *headers;
        void *ptr;
        char _pad[64];
    } u;
} rd_kafka_vu_t;

/* One function to look up: where its pointer goes, and its name. */
typedef struct {
    void **slot;
    const char *name;
} RkSymbol;

/* Fill every slot from the library at path `library` (already loaded); 0, or -1 with ImportError. */
int rk_lookup(const char *library, const RkSymbol *table, size_t n, const char *who);

/* A confluent-kafka client object's handle as it holds it now (NULL once the client is closed). */
static inline rd_kafka_t *rk_handle_of(PyObject *client) {
    return *(rd_kafka_t **)((char *)client + sizeof(PyObject));
}

#endif
