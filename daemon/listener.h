/*
 * Listening sockets: opened from a listener's configuration (or, later,
 * adopted from systemd), and closed again, removing a unix socket file only
 * when it is still the one we created.
 */
#ifndef NT_LISTENER_H
#define NT_LISTENER_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"

struct nt_listener {
	char name[NT_NAME_MAX + 1];
	enum nt_service service;
	enum nt_family family;
	int fd;
	bool from_systemd;
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

/* Close the socket; a unix socket file is unlinked if it is still ours. */
void nt_listener_close(struct nt_listener *l);

/* "127.0.0.1:4007", "[::1]:4000" or the unix path */
void nt_listener_format(const struct nt_listener *l, char *buf, size_t size);

#endif
