/*
 * The echo service (RFC 862): every byte received goes back, unchanged.
 */
#ifndef NT_ECHO_H
#define NT_ECHO_H

#include "conn.h"

extern const struct nt_service_ops nt_echo_ops;

#endif
