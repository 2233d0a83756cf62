/*
 * The echo service (RFC 862): every byte received goes back, unchanged.
 */
#ifndef NT_ECHO_H
#define NT_ECHO_H

#include "conn.h"
#include "service.h" /* its entry: nt_echo_service */

#endif
