/*
 * What systemd hears while natterd runs: the STATUS= line and the
 * watchdog's keep-alive, held back while a worker is stuck. The main
 * thread's ticks between signals drive both.
 */
#ifndef NT_STATUS_H
#define NT_STATUS_H

#include <stddef.h>

#include "server.h"

void nt_status_text(struct nt_server *s, char *buf, size_t size);
/* READY=1 with the current STATUS= (at start and after a reload) */
void nt_status_ready(struct nt_server *s);
/* the workers run: the watchdog and STATUS= timers start now */
void nt_status_start(struct nt_server *s);
void nt_status_tick(struct nt_server *s);
/* ms until the next tick is due */
int nt_status_timeout(const struct nt_server *s);

#endif
