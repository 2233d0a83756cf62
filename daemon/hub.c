/*
 * The chat registry: a nick map and a room map under one lock. A room
 * exists while it has members; each keeps its member list (for /who) and a
 * member count per worker (for fan-out). Guest numbers in use are kept in a
 * bitmap so that handing out a guest nick costs the same with ten sessions
 * or a million.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"
#include "text.h"

struct hub_room {
	struct nt_map_node node;
	char name[NT_ROOM_MAX + 1];
	unsigned members;
	struct nt_hub_entry *head;
	unsigned per_worker[]; /* n_workers counts */
};

/*
 * Guest numbers: guest0001..guest9999, then guest10000 and up. Bit n of
 * level 0 says number n is held by some nick (however it got it: handed
 * out, restored after a restart, or taken by a rename); bit i of level k+1
 * says word i of level k is full. Finding a free number reads a few words
 * per level, never one per session.
 */
#define GUEST_SHORT        9999u      /* the last four-digit number */
#define GUEST_SPAN         (1u << 20) /* numbers below it are tracked */
#define GUEST_LEVELS       3
#define GUEST_NONE         0u /* number 0 is never handed out */
#define GUEST_WORDS(level) (GUEST_SPAN >> (6 * ((level) + 1)))

_Static_assert(GUEST_SPAN - 1 > (uint64_t)NT_MAX_CONNS + GUEST_SHORT,
               "every session can hold a guest number");
_Static_assert(sizeof("guest1048575") - 1 <= NT_NICK_LIMIT,
               "the longest guest nick fits");
_Static_assert(GUEST_WORDS(GUEST_LEVELS - 1) >= 1 &&
                   GUEST_WORDS(GUEST_LEVELS - 1) <= 64,
               "the top level is a few words");

struct nt_hub {
	pthread_mutex_t lock; /* guards everything below and every entry */
	unsigned n_workers;
	unsigned max_rooms;
	uint64_t *guest_bits[GUEST_LEVELS]; /* one allocation, level 0 first */
	uint32_t guest_last; /* the last number handed out; the next follows */
	uint64_t guest_probes; /* bitmap words read to hand numbers out */
	char default_room[NT_ROOM_MAX + 1]; /* exempt from max_rooms */
	struct nt_map nicks;                /* nick_key -> entry */
	struct nt_map rooms;                /* name -> hub_room */
	atomic_uint_fast64_t next_id;       /* not under the lock */
};

struct nt_hub *nt_hub_new(unsigned n_workers, unsigned max_rooms,
                          const char *default_room)
{
	struct nt_hub *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	size_t words = 0;
	for (int l = 0; l < GUEST_LEVELS; l++)
		words += GUEST_WORDS(l);
	uint64_t *bits = calloc(words, sizeof(*bits));
	if (!bits) {
		free(h);
		return NULL;
	}
	for (int l = 0; l < GUEST_LEVELS; l++) {
		h->guest_bits[l] = bits;
		bits += GUEST_WORDS(l);
	}
	h->guest_bits[0][0] = 1; /* number 0 is never free */
	pthread_mutex_init(&h->lock, NULL);
	h->n_workers = n_workers;
	h->max_rooms = max_rooms;
	snprintf(h->default_room, sizeof(h->default_room), "%s", default_room);
	atomic_init(&h->next_id, 1);
	nt_map_init(&h->nicks);
	nt_map_init(&h->rooms);
	return h;
}

void nt_hub_free(struct nt_hub *h)
{
	size_t it;

	if (!h)
		return;
	/* sessions are gone by now; rooms only outlive them on error paths */
	struct nt_map_node *n = nt_map_first(&h->rooms, &it), *next;
	for (; n; n = next) {
		next = nt_map_next(&h->rooms, n, &it);
		free(nt_container_of(n, struct hub_room, node));
	}
	nt_map_free(&h->rooms);
	nt_map_free(&h->nicks);
	free(h->guest_bits[0]);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static struct hub_room *room_get(struct nt_hub *h, const char *name)
{
	struct nt_map_node *n = nt_map_get(&h->rooms, name);
	return n ? nt_container_of(n, struct hub_room, node) : NULL;
}

/* Put e into room, creating it; the lock is held. */
static int room_add(struct nt_hub *h, struct nt_hub_entry *e, const char *name,
                    unsigned *members)
{
	struct hub_room *r = room_get(h, name);

	if (!r) {
		if (h->rooms.n >= h->max_rooms &&
		    strcmp(name, h->default_room) != 0)
			return -ENOSPC;
		r = calloc(1, sizeof(*r) + h->n_workers * sizeof(unsigned));
		if (!r)
			return -ENOMEM;
		snprintf(r->name, sizeof(r->name), "%s", name);
		if (nt_map_put(&h->rooms, &r->node, r->name) < 0) {
			free(r);
			return -ENOMEM;
		}
	}
	e->room_prev = NULL;
	e->room_next = r->head;
	if (r->head)
		r->head->room_prev = e;
	r->head = e;
	r->members++;
	r->per_worker[e->worker]++;
	e->room_rec = r;
	snprintf(e->room, sizeof(e->room), "%s", r->name);
	if (members)
		*members = r->members;
	return 0;
}

static void room_remove(struct nt_hub *h, struct nt_hub_entry *e)
{
	struct hub_room *r = e->room_rec;

	if (!r)
		return;
	if (e->room_prev)
		e->room_prev->room_next = e->room_next;
	else
		r->head = e->room_next;
	if (e->room_next)
		e->room_next->room_prev = e->room_prev;
	e->room_prev = e->room_next = NULL;
	e->room_rec = NULL;
	r->per_worker[e->worker]--;
	if (--r->members == 0) {
		nt_map_del(&h->rooms, &r->node);
		free(r);
	}
}

static void nick_set(struct nt_hub_entry *e, const char *nick)
{
	size_t len = strlen(nick);
	snprintf(e->nick, sizeof(e->nick), "%s", nick);
	nt_text_nick_fold(nick, len, e->nick_key);
}

/*
 * The guest number a folded nick spells, as guest_nick writes it (four
 * digits up to 9999, no leading zero above), or GUEST_NONE: "guest00001"
 * or "guest0000" can never be handed out, so they hold no number.
 */
static uint32_t guest_number(const char *key)
{
	uint32_t n = 0;
	size_t digits = 0;

	if (strncmp(key, "guest", 5) != 0)
		return GUEST_NONE;
	for (const char *p = key + 5; *p; p++, digits++) {
		if (*p < '0' || *p > '9' || n >= GUEST_SPAN)
			return GUEST_NONE;
		n = n * 10 + (uint32_t)(*p - '0');
	}
	if (n >= GUEST_SPAN || (digits == 4) != (n <= GUEST_SHORT) ||
	    (digits > 4 && key[5] == '0'))
		return GUEST_NONE;
	return n;
}

static void guest_nick(uint32_t n, char *nick, size_t size)
{
	snprintf(nick, size, n <= GUEST_SHORT ? "guest%04u" : "guest%u", n);
}

/* Mark n held or free, and every level above whose word fills or empties. */
static void guest_mark(struct nt_hub *h, uint32_t n, bool held)
{
	for (int l = 0; l < GUEST_LEVELS; l++, n /= 64) {
		uint64_t *w = &h->guest_bits[l][n / 64];
		bool was_full = *w == UINT64_MAX;
		if (held)
			*w |= 1ull << (n % 64);
		else
			*w &= ~(1ull << (n % 64));
		if ((*w == UINT64_MAX) == was_full)
			return;
	}
}

/* The lowest free number from 'from' on, or GUEST_NONE. */
static uint32_t guest_next_free(struct nt_hub *h, uint32_t from)
{
	uint32_t pos = from;
	int l = 0;

	/* climb until a word has a free bit at or after pos */
	for (;;) {
		if (pos >= GUEST_WORDS(l) * 64)
			return GUEST_NONE;
		h->guest_probes++;
		uint64_t free_bits =
		    ~h->guest_bits[l][pos / 64] & (UINT64_MAX << (pos % 64));
		if (free_bits) {
			pos =
			    (pos & ~63u) | (uint32_t)__builtin_ctzll(free_bits);
			break;
		}
		/* the top level has no summary: look along it */
		pos = l == GUEST_LEVELS - 1 ? (pos | 63u) + 1 : pos / 64 + 1;
		if (l < GUEST_LEVELS - 1)
			l++;
	}
	/* a word below a non-full bit has a free bit: descend to it */
	for (; l > 0; l--) {
		h->guest_probes++;
		pos = pos * 64 +
		      (uint32_t)__builtin_ctzll(~h->guest_bits[l - 1][pos]);
	}
	return pos;
}

/*
 * Nicks go into and out of the map only here, so the guest bitmap always
 * matches the map.
 */
static int nick_put(struct nt_hub *h, struct nt_hub_entry *e)
{
	int rc = nt_map_put(&h->nicks, &e->by_nick, e->nick_key);
	uint32_t n = guest_number(e->nick_key);

	if (rc == 0 && n != GUEST_NONE)
		guest_mark(h, n, true);
	return rc;
}

static void nick_del(struct nt_hub *h, struct nt_hub_entry *e)
{
	uint32_t n = guest_number(e->nick_key);

	/* a session whose enter failed is not in the map: its number may
	 * belong to someone else by now */
	if (nt_map_get(&h->nicks, e->nick_key) != &e->by_nick)
		return;
	nt_map_del(&h->nicks, &e->by_nick);
	if (n != GUEST_NONE)
		guest_mark(h, n, false);
}

/*
 * The next free four-digit number after the last one handed out, going
 * round, so that a nick just freed is not handed to the next guest while
 * others are free; only when all 9999 are held, the lowest free longer one.
 * The lock is held.
 */
static int guest_claim(struct nt_hub *h, struct nt_hub_entry *e)
{
	char nick[NT_NICK_LIMIT + 1];
	uint32_t n = guest_next_free(h, h->guest_last + 1);

	if (n == GUEST_NONE || n > GUEST_SHORT)
		n = guest_next_free(h, 1);
	if (n == GUEST_NONE)
		return -EUSERS;
	h->guest_last = n;
	guest_nick(n, nick, sizeof(nick));
	nick_set(e, nick);
	return nick_put(h, e);
}

uint64_t nt_hub_guest_probes(struct nt_hub *h)
{
	pthread_mutex_lock(&h->lock);
	uint64_t probes = h->guest_probes;
	pthread_mutex_unlock(&h->lock);
	return probes;
}

int nt_hub_enter(struct nt_hub *h, struct nt_hub_entry *e, const char *room,
                 unsigned *members)
{
	int rc;

	pthread_mutex_lock(&h->lock);
	rc = guest_claim(h, e);
	if (rc == 0 && (rc = room_add(h, e, room, members)) < 0)
		nick_del(h, e);
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int nt_hub_enter_as(struct nt_hub *h, struct nt_hub_entry *e, const char *nick,
                    const char *room, unsigned *members)
{
	char key[NT_NICK_LIMIT + 1];
	size_t len = nick ? strnlen(nick, NT_NICK_LIMIT + 1) : 0;
	int rc;

	if (!len || len > NT_NICK_LIMIT ||
	    !nt_text_nick_valid(nick, len, NT_NICK_LIMIT))
		return nt_hub_enter(h, e, room, members);
	nt_text_nick_fold(nick, len, key);
	pthread_mutex_lock(&h->lock);
	if (nt_map_get(&h->nicks, key)) {
		rc = guest_claim(h, e);
	} else {
		nick_set(e, nick);
		rc = nick_put(h, e);
	}
	if (rc == 0 && (rc = room_add(h, e, room, members)) < 0)
		nick_del(h, e);
	pthread_mutex_unlock(&h->lock);
	return rc;
}

void nt_hub_configure(struct nt_hub *h, unsigned max_rooms,
                      const char *default_room)
{
	pthread_mutex_lock(&h->lock);
	h->max_rooms = max_rooms;
	snprintf(h->default_room, sizeof(h->default_room), "%s", default_room);
	pthread_mutex_unlock(&h->lock);
}

void nt_hub_leave(struct nt_hub *h, struct nt_hub_entry *e)
{
	pthread_mutex_lock(&h->lock);
	room_remove(h, e);
	nick_del(h, e);
	pthread_mutex_unlock(&h->lock);
}

int nt_hub_rename(struct nt_hub *h, struct nt_hub_entry *e, const char *nick)
{
	char key[NT_NICK_LIMIT + 1];
	size_t len = strnlen(nick, NT_NICK_LIMIT);
	int rc = 0;

	nt_text_nick_fold(nick, len, key);
	pthread_mutex_lock(&h->lock);
	struct nt_map_node *n = nt_map_get(&h->nicks, key);
	if (n && n != &e->by_nick) {
		rc = -EEXIST;
	} else {
		/* the same entry may change only the case of its nick */
		nick_del(h, e);
		nick_set(e, nick);
		rc = nick_put(h, e);
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int nt_hub_move(struct nt_hub *h, struct nt_hub_entry *e, const char *room,
                unsigned *members)
{
	char old_name[NT_ROOM_MAX + 1];
	int rc;

	pthread_mutex_lock(&h->lock);
	struct hub_room *old = e->room_rec;
	bool old_vanishes = old && old->members == 1;
	if (old && !strcmp(old->name, room)) {
		rc = -EALREADY;
	} else if (!room_get(h, room) && h->rooms.n >= h->max_rooms &&
	           !old_vanishes && strcmp(room, h->default_room) != 0) {
		/* checked first so a full server leaves the user in place */
		rc = -ENOSPC;
	} else {
		snprintf(old_name, sizeof(old_name), "%s", e->room);
		room_remove(h, e);
		rc = room_add(h, e, room, members);
		if (rc < 0 && old)
			room_add(h, e, old_name, NULL); /* out of memory */
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

uint64_t nt_hub_next_id(struct nt_hub *h)
{
	return atomic_fetch_add_explicit(&h->next_id, 1, memory_order_relaxed);
}

int nt_hub_find(struct nt_hub *h, const char *nick, struct nt_hub_target *t)
{
	char key[NT_NICK_LIMIT + 1];
	int rc = -ENOENT;

	nt_text_nick_fold(nick, strnlen(nick, NT_NICK_LIMIT), key);
	pthread_mutex_lock(&h->lock);
	struct nt_map_node *n = nt_map_get(&h->nicks, key);
	if (n) {
		struct nt_hub_entry *e =
		    nt_container_of(n, struct nt_hub_entry, by_nick);
		t->id = e->id;
		t->worker = e->worker;
		t->slot = e->slot;
		memcpy(t->nick, e->nick, sizeof(e->nick));
		rc = 0;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

unsigned nt_hub_room_workers(struct nt_hub *h, const char *room, bool *workers)
{
	unsigned members = 0;

	pthread_mutex_lock(&h->lock);
	struct hub_room *r = room_get(h, room);
	for (unsigned i = 0; i < h->n_workers; i++)
		workers[i] = r && r->per_worker[i] > 0;
	if (r)
		members = r->members;
	pthread_mutex_unlock(&h->lock);
	return members;
}

unsigned nt_hub_who(struct nt_hub *h, const char *room,
                    char (*names)[NT_NICK_LIMIT + 1], unsigned max)
{
	unsigned members = 0, i = 0;

	pthread_mutex_lock(&h->lock);
	struct hub_room *r = room_get(h, room);
	if (r) {
		members = r->members;
		for (struct nt_hub_entry *e = r->head; e && i < max;
		     e = e->room_next)
			memcpy(names[i++], e->nick, sizeof(e->nick));
	}
	pthread_mutex_unlock(&h->lock);
	return members;
}

unsigned nt_hub_rooms(struct nt_hub *h, struct nt_hub_room_info *out,
                      unsigned max)
{
	unsigned i = 0, total;
	size_t it;

	pthread_mutex_lock(&h->lock);
	total = (unsigned)h->rooms.n;
	for (struct nt_map_node *n = nt_map_first(&h->rooms, &it); n && i < max;
	     n = nt_map_next(&h->rooms, n, &it)) {
		struct hub_room *r = nt_container_of(n, struct hub_room, node);
		memcpy(out[i].name, r->name, sizeof(r->name));
		out[i++].members = r->members;
	}
	pthread_mutex_unlock(&h->lock);
	return total;
}
