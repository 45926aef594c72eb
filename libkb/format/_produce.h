/*
 * libkb.format._packer's RecordProducer type (_produce.c): a restore's
 * records produced from C through confluent-kafka's producer handle.
 */
#ifndef LIBKB_PRODUCE_H
#define LIBKB_PRODUCE_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

extern PyTypeObject RecordProducerType;

/* Add the RecordProducer type to the module; 0, or -1 with an exception. */
int produce_add_type(PyObject *module);

#endif
