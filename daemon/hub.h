/*
 * The chat registry shared by every worker: who is called what, and who is
 * in which room (with a count per worker, so a sender knows which workers
 * to post a room message to). One lock guards all of it and is held only
 * for a lookup or an update, never across I/O.
 */
#ifndef NT_HUB_H
#define NT_HUB_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "map.h"

/*
 * One per chat session, embedded in the session. Only the hub writes it,
 * under its lock; the owning worker may read nick and room without the lock
 * because nobody else ever changes them.
 */
struct nt_hub_entry {
	struct nt_map_node by_nick;
	struct nt_hub_entry *room_prev, *room_next;
	struct hub_room *room_rec;
	uint64_t id;     /* unique for the life of the process */
	unsigned worker; /* the worker that owns the session */
	uint32_t slot;   /* the session's place in its worker's table */
	char nick[NT_NICK_LIMIT + 1];
	char nick_key[NT_NICK_LIMIT + 1]; /* folded to lower case */
	char room[NT_ROOM_MAX + 1];
};

struct nt_hub_room_info {
	char name[NT_ROOM_MAX + 1];
	unsigned members;
};

struct nt_hub;

/*
 * max_rooms bounds the rooms that exist at once, except default_room: it
 * can always be made again, so that filling the server with rooms cannot
 * lock new clients out.
 */
struct nt_hub *nt_hub_new(unsigned n_workers, unsigned max_rooms,
                          const char *default_room);
void nt_hub_free(struct nt_hub *h);

/*
 * Register e (id and worker set by the caller) under a fresh guest nick in
 * room: guest0001..guest9999 in turn, guest10000 and up once those are all
 * held. Guest nicks are server-given, so chat.max_nick does not bound them;
 * every one fits NT_NICK_LIMIT. *members is the room's size afterwards.
 * -ENOSPC when the room would be one more than max_rooms, -EUSERS when
 * every guest number is held (more than NT_MAX_CONNS guests), -ENOMEM.
 */
int nt_hub_enter(struct nt_hub *h, struct nt_hub_entry *e, const char *room,
                 unsigned *members);
/*
 * As nt_hub_enter, but under nick if it is valid and free (a session that
 * comes back after a restart), else a fresh guest nick.
 */
int nt_hub_enter_as(struct nt_hub *h, struct nt_hub_entry *e, const char *nick,
                    const char *room, unsigned *members);
/* A new max_rooms and default_room (reload): rooms over the limit stay,
 * no new one is made. */
void nt_hub_configure(struct nt_hub *h, unsigned max_rooms,
                      const char *default_room);
/* Take e out of its room and free its nick. */
void nt_hub_leave(struct nt_hub *h, struct nt_hub_entry *e);
/* -EEXIST if another session has nick (in any case); nick is valid */
int nt_hub_rename(struct nt_hub *h, struct nt_hub_entry *e, const char *nick);
/* Move e to room (valid, normalized): -ENOSPC as for enter */
int nt_hub_move(struct nt_hub *h, struct nt_hub_entry *e, const char *room,
                unsigned *members);

/* where to post something for a session */
struct nt_hub_target {
	uint64_t id;
	unsigned worker;
	uint32_t slot;
	char nick[NT_NICK_LIMIT + 1];
};

/* Find a session by nick (any case): -ENOENT */
int nt_hub_find(struct nt_hub *h, const char *nick, struct nt_hub_target *t);
/* Bitmap words read so far to hand out guest nicks: a few per enter,
 * however many sessions there are; tests count them to show it. */
uint64_t nt_hub_guest_probes(struct nt_hub *h);
/* A fresh session id. */
uint64_t nt_hub_next_id(struct nt_hub *h);
/* Which workers have members in room (workers[] has n_workers slots);
 * returns the room's member count, 0 if there is no such room. */
unsigned nt_hub_room_workers(struct nt_hub *h, const char *room, bool *workers);
/* Up to max member nicks of room; returns the member count. */
unsigned nt_hub_who(struct nt_hub *h, const char *room,
                    char (*names)[NT_NICK_LIMIT + 1], unsigned max);
/* Up to max rooms; returns how many rooms there are. */
unsigned nt_hub_rooms(struct nt_hub *h, struct nt_hub_room_info *out,
                      unsigned max);

#endif
