/*
 * libkb.format._packer's Intake type (_intake.c): a consumer's messages read
 * from librdkafka in C, packed by pack_messages without Message objects.
 */
#ifndef LIBKB_INTAKE_H
#define LIBKB_INTAKE_H
#include "_msgpack.h"

extern PyTypeObject IntakeType;
#define Intake_Check(op) PyObject_TypeCheck(op, &IntakeType)

/* Pack the intake's messages [start, stop) into o; 0, or -1 with an exception. */
int intake_pack(PyObject *intake, Py_ssize_t start, Py_ssize_t stop, Out *o, Py_ssize_t limit,
                PyObject *topic, long partition, int64_t end_offset, Stats *st, int *reason,
                Py_ssize_t *next);

/* Add the Intake type to the module; 0, or -1 with an exception. */
int intake_add_type(PyObject *module);

#endif
