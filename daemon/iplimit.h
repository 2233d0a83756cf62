/*
 * Connections per client address, for limits.per_ip. Shared by the
 * workers (which take a slot when they admit, and give it back), so
 * it has one lock, held only for a table lookup and update. An IPv4
 * address counts alone; an IPv6 one counts with every address of its
 * prefix (limits.per_ip_prefix6), since one client commonly holds a /64.
 */
#ifndef NT_IPLIMIT_H
#define NT_IPLIMIT_H

#include <stdbool.h>

#include "util.h"

struct nt_iplimit;

/* max 0 means unlimited (every take succeeds, nothing is stored);
 * prefix6 is 1..128 */
struct nt_iplimit *nt_iplimit_new(unsigned max, unsigned prefix6);
void nt_iplimit_free(struct nt_iplimit *t);

/*
 * Counts one more connection from p; false (and nothing counted) if p's
 * address (or IPv6 prefix) already has max, or memory ran out. Records in
 * p->counted what it was counted under (0: not at all, as with no limit),
 * which is what its release goes by. Unix peers are never limited.
 */
bool nt_iplimit_take(struct nt_iplimit *t, struct nt_peer *p);
/* Counts p whatever the limit (a connection that already exists, taken
 * over after a restart); false only when memory ran out. */
bool nt_iplimit_add(struct nt_iplimit *t, struct nt_peer *p);
/*
 * New settings (reload): connections over a lower max stay, new ones wait
 * for room. Open connections stay counted under the prefix they were
 * counted under and are released from it; new ones count under prefix6.
 */
void nt_iplimit_set(struct nt_iplimit *t, unsigned max, unsigned prefix6);
/* p's connection has ended: uncounts it if its take or add counted it */
void nt_iplimit_release(struct nt_iplimit *t, const struct nt_peer *p);
/* connections counted for p's address (or prefix, as new ones would be);
 * for tests and stats */
unsigned nt_iplimit_count(struct nt_iplimit *t, const struct nt_peer *p);

#endif
