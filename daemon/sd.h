/*
 * Everything systemd: readiness, status and watchdog notifications, the
 * sockets systemd passes in (socket activation and the fd store), and
 * keeping listening sockets and client connections in the fd store so
 * that a restart drops nobody. Without systemd ($NOTIFY_SOCKET, $LISTEN_FDS
 * and $FDSTORE unset) every function here does nothing.
 */
#ifndef NT_SD_H
#define NT_SD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define NT_SD_FDNAME_MAX 255 /* systemd's limit for FDNAME= */

/* ---- notifications: main thread only ------------------------------------ */

/* Read $NOTIFY_SOCKET, $WATCHDOG_USEC and $FDSTORE; before any thread. */
void nt_sd_init(void);
/* READY=1 with MAINPID= and STATUS= (NULL: none) */
void nt_sd_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC= */
void nt_sd_reloading(void);
/* STOPPING=1 with STATUS= */
void nt_sd_stopping(const char *status);
/* STATUS=, sent only when it differs from the last one sent */
void nt_sd_status(const char *status);
/* the watchdog interval in microseconds, 0 when there is none */
uint64_t nt_sd_watchdog_usec(void);
void nt_sd_watchdog_ping(void);

/* ---- file descriptors passed in by systemd ------------------------------ */

enum nt_sd_fd_kind {
	NT_SD_FD_SOCKET,   /* socket activation: named FileDescriptorName= */
	NT_SD_FD_LISTENER, /* a listener we kept in the fd store */
	NT_SD_FD_CLIENT,  /* a client's socket or its session, from the store */
	NT_SD_FD_UNKNOWN, /* a name of ours we do not understand */
};

/*
 * How a name in $LISTEN_FDNAMES is read (pure). A name without '@' is a
 * socket unit's FileDescriptorName=, which key receives; "listener@NAME" is
 * a listening socket natterd stored (key: NAME); "client@ID" a client's
 * socket or its session memfd (key: ID). key holds NT_SD_FDNAME_MAX + 1.
 */
enum nt_sd_fd_kind nt_sd_fdname_parse(const char *name, char *key, size_t size);

struct nt_sd_fd {
	int fd; /* -1 once taken or closed */
	enum nt_sd_fd_kind kind;
	char name[NT_SD_FDNAME_MAX + 1]; /* as passed */
	char key[NT_SD_FDNAME_MAX + 1];
};

struct nt_sd_fds {
	struct nt_sd_fd *v;
	size_t n;
};

/*
 * Take the fds systemd passed ($LISTEN_FDS, $LISTEN_PID, $LISTEN_FDNAMES)
 * and unset those variables. 0 (f->n may be 0) or -errno, logged.
 */
int nt_sd_fds_take(struct nt_sd_fds *f);
/* the first fd of kind named key that is still there, or NULL */
struct nt_sd_fd *nt_sd_fds_find(struct nt_sd_fds *f, enum nt_sd_fd_kind kind,
                                const char *key);
/* close every fd not taken; NULL is fine */
void nt_sd_fds_free(struct nt_sd_fds *f);

/* ---- the fd store ------------------------------------------------------- */

/*
 * Whether fds are stored: $NOTIFY_SOCKET is set and $FDSTORE (set by
 * systemd 254 and later, or by the unit with Environment=) is the unit's
 * FileDescriptorStoreMax=, above 0. The store is never filled past it.
 */
bool nt_sd_store_enabled(void);
/* FDSTORE=1 with FDNAME=listener@NAME; 0 or -errno (not logged) */
int nt_sd_store_listener(const char *name, int fd);
/* FDSTOREREMOVE=1 for listener@NAME */
void nt_sd_forget_listener(const char *name);
/* a stored fd came back and is kept (listener) or dropped (forget) */
void nt_sd_store_count_adopted(unsigned n);

#define NT_SD_SESSION_SIZE 256 /* fixed, so that one pwrite replaces it */
/* a service's part of a record: what the header leaves of its size */
#define NT_SD_BLOB_MAX 128

/*
 * What a client needs to find its place again after a restart: its
 * listener, which stored socket it is, and a blob that the listener's
 * service alone encodes and reads (service.h), opaque here.
 */
struct nt_sd_session {
	char listener[NT_NAME_MAX + 1];
	uint64_t socket; /* the socket's inode: which stored socket it is */
	uint32_t blob_len;
	uint8_t blob[NT_SD_BLOB_MAX];
};

/*
 * A record, in exactly NT_SD_SESSION_SIZE bytes, zero-padded:
 *
 *   natter-session 2\n listener=NAME\n socket=INODE\n blob=LEN\n
 *
 * then LEN bytes of blob. Records of version 1 (natterd before blobs:
 * nick=NICK\n room=ROOM\n lines and no blob) are still read: their nick
 * and room, checked as they were, become the blob "nick=NICK\nroom=ROOM\n",
 * which is how the chat service reads a blob without a version line.
 */
/* encode (pure) */
void nt_sd_session_encode(const struct nt_sd_session *s,
                          char buf[NT_SD_SESSION_SIZE]);
/* decode (pure): 0, or -EINVAL for anything that is not a valid record;
 * out is untouched then. The blob is checked only for its bounds: its
 * service checks the rest. */
int nt_sd_session_decode(const char *buf, size_t len,
                         struct nt_sd_session *out);

/*
 * Clients go into the store in groups, so that connection churn is not
 * load on PID 1: a worker's new clients wait up to NT_SD_FLUSH_MS, then go
 * in one FDSTORE=1 message per group (up to NT_SD_GROUP_MAX sockets and a
 * memfd with one session record per socket, all named client@ID). A client
 * that closes before its group is sent never reaches systemd; one that
 * closes later has its record cleared at once (no message) and its socket
 * shut down, which makes systemd drop it; the group leaves the store with
 * one FDSTOREREMOVE=1 when its last client is gone.
 */
#define NT_SD_FLUSH_MS 100
#define NT_SD_GROUP_MAX                                                        \
	252 /* the kernel's SCM_MAX_FD (253), less the memfd                   \
	     */

/*
 * One client connection in the store, or on its way there, owned by the
 * connection's worker. A client waits in the list of the thread that
 * called nt_sd_client_store(): only that thread may update, forget or
 * release it until nt_sd_client_kept().
 */
struct nt_sd_client;

/* Queue fd and s for the store; NULL when the store is off. */
struct nt_sd_client *nt_sd_client_store(int fd, const struct nt_sd_session *s);
/* The session changed: rewrite its record in place (one pwrite), or the
 * queued copy while it waits. */
void nt_sd_client_update(struct nt_sd_client *c, const struct nt_sd_session *s);
/* The client is gone (its socket shut down first): its record cleared,
 * its group removed if it was the last; free. NULL is fine. */
void nt_sd_client_forget(struct nt_sd_client *c);
/* Handover at shutdown: the store keeps it; only our handle goes. */
void nt_sd_client_release(struct nt_sd_client *c);
/* whether c is in the store (false while it waits, or if it could not be
 * stored: the store was full or failed); NULL is fine */
bool nt_sd_client_kept(const struct nt_sd_client *c);

/*
 * Send this thread's waiting clients once they are due (all: every one,
 * now, as before a handover). now is nt_now_ms(). Bounded: at most a few
 * messages per NT_SD_FLUSH_MS whatever the churn, unless all.
 */
void nt_sd_clients_flush(uint64_t now, bool all);
/* when this thread's waiting clients are due (nt_now_ms() clock), or
 * UINT64_MAX when none wait */
uint64_t nt_sd_clients_due(void);

/*
 * The stored clients in f, each found by its socket's record in its
 * group's memfd: for each, adopt() is called with the socket (now the
 * callee's), a handle for its record, and the decoded session. A group
 * without exactly one readable memfd is dropped with a warning; a socket
 * without a record (its client closed) or already hung up is shut down and
 * closed. Returns how many were handed to adopt().
 */
size_t nt_sd_clients_take(struct nt_sd_fds *f,
                          void (*adopt)(void *arg, int fd,
                                        struct nt_sd_client *c,
                                        const struct nt_sd_session *s),
                          void *arg);

#endif
