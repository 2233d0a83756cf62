/*
 * Connections per client address, for limits.per_ip. Shared by the
 * workers (which take a slot when they admit, and give it back), so
 * it has one lock, held only for a table lookup and update.
 */
#ifndef NT_IPLIMIT_H
#define NT_IPLIMIT_H

#include <stdbool.h>

#include "util.h"

struct nt_iplimit;

/* max 0 means unlimited (every take succeeds, nothing is stored) */
struct nt_iplimit *nt_iplimit_new(unsigned max);
void nt_iplimit_free(struct nt_iplimit *t);

/* Counts one more connection from p; false (and nothing counted) if p
 * already has max, or memory ran out. Unix peers are never limited. */
bool nt_iplimit_take(struct nt_iplimit *t, const struct nt_peer *p);
/* Counts p whatever the limit (a connection that already exists, taken
 * over after a restart); false only when memory ran out. */
bool nt_iplimit_add(struct nt_iplimit *t, const struct nt_peer *p);
/* A new limit (reload): connections over it stay, new ones wait for room. */
void nt_iplimit_set_max(struct nt_iplimit *t, unsigned max);
void nt_iplimit_release(struct nt_iplimit *t, const struct nt_peer *p);
/* connections counted for p (for tests and stats) */
unsigned nt_iplimit_count(struct nt_iplimit *t, const struct nt_peer *p);

#endif
