/*
 * Listening sockets: opened from a listener's configuration or taken over
 * from systemd (socket activation, or our own fd store across a restart),
 * and closed again, removing a unix socket file only when it is still the
 * one we created. A listener set is what the workers accept on.
 */
#ifndef NT_LISTENER_H
#define NT_LISTENER_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"

struct nt_sd_fds;

enum nt_listener_origin {
	NT_LISTENER_BOUND,  /* we bound it from the configuration */
	NT_LISTENER_SOCKET, /* socket activation: the socket unit's address */
	NT_LISTENER_STORED, /* bound by an earlier natterd, kept by systemd */
};

struct nt_listener {
	char name[NT_NAME_MAX + 1];
	enum nt_service service;
	enum nt_family family; /* of the socket itself: ipv4, ipv6 or unix */
	int fd;
	enum nt_listener_origin origin;
	bool stored; /* in systemd's fd store as listener@NAME */
	struct sockaddr_storage addr; /* the address actually bound */
	socklen_t addrlen;
	char path[NT_PATH_MAX + 1]; /* unix: the file we created */
	dev_t dev;
	ino_t ino;
};

/*
 * Open, bind and listen as lc says. Logs what went wrong (naming the
 * listener, the address and the reason) and returns -errno on failure, in
 * which case l->fd is -1 and nothing is left open.
 */
int nt_listener_open(struct nt_listener *l, const struct nt_listener_conf *lc);

/*
 * Serve lc on fd, a socket systemd passed (origin SOCKET or STORED). It must
 * be a listening stream socket; then l owns it. Logs and returns -errno
 * otherwise; -ESTALE (not logged) for a STORED socket that is no longer
 * where lc says. On failure fd is left open and l does not own it.
 */
int nt_listener_adopt(struct nt_listener *l, const struct nt_listener_conf *lc,
                      int fd, enum nt_listener_origin origin);

/* Is l's socket bound where lc says (family, address, port, path)? A
 * configured port 0 matches any port. */
bool nt_listener_matches(const struct nt_listener *l,
                         const struct nt_listener_conf *lc);

/* Would a and b be bound to the same place? (name and service aside) */
bool nt_listener_conf_same_endpoint(const struct nt_listener_conf *a,
                                    const struct nt_listener_conf *b);

/* Close the socket; a unix socket file is unlinked if it is still ours. */
void nt_listener_close(struct nt_listener *l);
/* Close our descriptor only: the socket lives on in systemd's fd store, so
 * its file stays too. */
void nt_listener_release(struct nt_listener *l);

/* "127.0.0.1:4007", "[::1]:4000" or the unix path */
void nt_listener_format(const struct nt_listener *l, char *buf, size_t size);

/*
 * What the workers accept on: l[i] with lc[i]. The listeners are separate
 * allocations shared between an old set and its successor during a reload;
 * whoever owns the set closes and frees the ones no successor has.
 */
struct nt_listener_set {
	size_t n;
	struct nt_listener **l;
	const struct nt_listener_conf **lc;
	struct nt_config *cfg; /* a reference: every lc points into it */
};

/* room for cfg->n_listeners, none in it yet; NULL if no memory */
struct nt_listener_set *nt_listener_set_new(struct nt_config *cfg);
/* the arrays and the config reference, not the listeners; NULL is fine */
void nt_listener_set_free(struct nt_listener_set *set);
/* the listener named name, or NULL; *lc (if not NULL) gets its conf */
struct nt_listener *nt_listener_set_find(const struct nt_listener_set *set,
                                         const char *name,
                                         const struct nt_listener_conf **lc);
bool nt_listener_set_has(const struct nt_listener_set *set,
                         const struct nt_listener *l);

/*
 * At start-up: a set for every listener of cfg. A socket systemd passed
 * under the listener's name (socket activation) is used as it is; one we
 * kept in the fd store is used if it is still bound where the listener
 * says; any other listener is bound, and kept in the fd store if that is
 * on. A passed socket whose name matches no listener is an error naming
 * it; stored listeners nobody wants are closed and dropped from the store.
 * Client fds in fds are left for later. Logs; 0 or -errno, and then
 * nothing is left open.
 */
int nt_listener_set_open(struct nt_config *cfg, struct nt_sd_fds *fds,
                         struct nt_listener_set **out);

/*
 * For a reload: a set for cfg that keeps every listener of old whose
 * name and address are unchanged (and every one systemd passed: its
 * address is the socket unit's), and opens the others. old is not touched.
 * Logs; 0 or -errno, and then nothing new is left open.
 */
int nt_listener_set_reload(const struct nt_listener_set *old,
                           struct nt_config *cfg, struct nt_listener_set **out);

/* close and free the listeners of set that keep does not have, then set */
void nt_listener_set_close(struct nt_listener_set *set,
                           const struct nt_listener_set *keep);

#endif
