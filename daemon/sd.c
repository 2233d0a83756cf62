/*
 * The systemd side of natterd: sd_notify messages, the watchdog interval,
 * the fds systemd hands over at start, and the fd store that keeps
 * listening sockets and client connections (with a small session record
 * in a memfd each) open across a restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "sd.h"
#include "text.h"
#include "util.h"

#define SESSION_MAGIC  "natter-session 2\n"
#define SESSION_V1     "natter-session 1\n" /* before blobs: still read */
#define STATUS_MAX     256
#define FLUSH_GROUPS   2  /* groups one worker sends per NT_SD_FLUSH_MS */
#define HANDOVER_TRIES 40 /* 5 ms apart: a handover waits 200 ms at most */

/* set by nt_sd_init() before any thread exists, then only read */
static bool sd_notify_on;
static struct sockaddr_un sd_addr; /* $NOTIFY_SOCKET, for the workers */
static socklen_t sd_addrlen;
static uint64_t sd_watchdog;
static unsigned sd_store_max;
static uint64_t sd_generation; /* makes client@ names unique per process */

/* main thread only */
static char sd_last_status[STATUS_MAX];

/* fds in the store that we know of; any thread */
static atomic_uint sd_stored;
static atomic_uint_fast64_t sd_client_seq;
static atomic_bool sd_full_logged;
static atomic_bool sd_busy_logged;

/*
 * One FDSTORE=1 message's worth of clients, under one name. After a
 * restart its clients are spread over the workers, hence the atomics.
 */
struct sd_group {
	int memfd;           /* a record per slot; a cleared one is all zeros */
	atomic_uint clients; /* not forgotten: the last one removes the group */
	atomic_uint refs;    /* handles: the last one frees it */
	char name[NT_SD_FDNAME_MAX + 1];
};

enum sd_client_state {
	SD_WAITING,  /* in its thread's waiting list, not sent yet */
	SD_KEPT,     /* in the store, in g at slot */
	SD_NOT_KEPT, /* the store was full or failed: never will be */
};

struct nt_sd_client {
	enum sd_client_state state;
	int fd;                 /* waiting: the socket to send */
	struct nt_sd_session s; /* its record as it is (or will be) written */
	struct sd_group *g;     /* kept */
	unsigned slot;          /* kept: its record's place in g->memfd */
	struct nt_sd_client *prev, *next; /* waiting */
};

/*
 * The clients this thread took in that wait for their group. Only the
 * thread that owns their sockets sends them, so the list needs no lock and
 * no socket is ever sent after its owner closed it.
 */
static _Thread_local struct {
	struct nt_sd_client *head, *tail;
	uint64_t due; /* NT_SD_FLUSH_MS after the first of them came */
} sd_waiting;

void nt_sd_init(void)
{
	const char *e = getenv("NOTIFY_SOCKET");
	struct timeval tv;
	uint64_t usec = 0;

	sd_notify_on = e && *e;
	size_t len = e ? strlen(e) : 0;
	if (len > 1 && len < sizeof(sd_addr.sun_path) &&
	    (e[0] == '/' || e[0] == '@')) {
		sd_addr.sun_family = AF_UNIX;
		memcpy(sd_addr.sun_path, e, len);
		if (e[0] == '@')
			sd_addr.sun_path[0] = '\0'; /* abstract */
		sd_addrlen =
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
		                (e[0] == '/'));
	}
	if (sd_notify_on && sd_watchdog_enabled(0, &usec) > 0)
		sd_watchdog = usec;
	e = getenv("FDSTORE");
	if (sd_notify_on && e && *e) {
		char *end;
		unsigned long n = strtoul(e, &end, 10);
		if (*end == '\0' && n > 0 && n < 1u << 24)
			sd_store_max = (unsigned)n;
	}
	gettimeofday(&tv, NULL);
	sd_generation = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* failures are logged at debug only: systemd going away is not ours */
static void sd_send(const char *msg)
{
	if (!sd_notify_on)
		return;
	int rc = sd_notify(0, msg);
	if (rc < 0)
		nt_log(NT_LOG_DEBUG, -rc, "sd_notify");
}

static void sd_send_status(const char *prefix, const char *status)
{
	char msg[STATUS_MAX + 128];

	if (status) {
		snprintf(msg, sizeof(msg), "%sSTATUS=%s", prefix, status);
		snprintf(sd_last_status, sizeof(sd_last_status), "%s", status);
	} else {
		snprintf(msg, sizeof(msg), "%s", prefix);
	}
	sd_send(msg);
}

void nt_sd_ready(const char *status)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "READY=1\nMAINPID=%ld\n",
	         (long)getpid());
	sd_send_status(prefix, status);
}

void nt_sd_reloading(void)
{
	char msg[96];
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ULL +
	             (unsigned long long)ts.tv_nsec / 1000);
	sd_send(msg);
}

void nt_sd_stopping(const char *status)
{
	sd_send_status("STOPPING=1\n", status);
}

void nt_sd_status(const char *status)
{
	if (!sd_notify_on || !strcmp(status, sd_last_status))
		return;
	sd_send_status("", status);
}

uint64_t nt_sd_watchdog_usec(void)
{
	return sd_watchdog;
}

void nt_sd_watchdog_ping(void)
{
	sd_send("WATCHDOG=1");
}

/* ---- fds passed in ------------------------------------------------------ */

enum nt_sd_fd_kind nt_sd_fdname_parse(const char *name, char *key, size_t size)
{
	const char *at = strchr(name, '@');

	if (!at) {
		snprintf(key, size, "%s", name);
		return NT_SD_FD_SOCKET;
	}
	snprintf(key, size, "%s", at + 1);
	if (!key[0])
		return NT_SD_FD_UNKNOWN;
	if ((size_t)(at - name) == strlen("listener") &&
	    !strncmp(name, "listener", (size_t)(at - name)))
		return NT_SD_FD_LISTENER;
	if ((size_t)(at - name) == strlen("client") &&
	    !strncmp(name, "client", (size_t)(at - name)))
		return NT_SD_FD_CLIENT;
	return NT_SD_FD_UNKNOWN;
}

int nt_sd_fds_take(struct nt_sd_fds *f)
{
	char **names = NULL;

	memset(f, 0, sizeof(*f));
	int n = sd_listen_fds_with_names(1, &names);
	if (n < 0) {
		nt_log(NT_LOG_ERR, -n,
		       "cannot take the sockets systemd "
		       "passed ($LISTEN_FDS)");
		return n;
	}
	if (n == 0) {
		free(names);
		return 0;
	}
	f->v = calloc((size_t)n, sizeof(*f->v));
	if (!f->v) {
		for (int i = 0; i < n; i++)
			close(SD_LISTEN_FDS_START + i);
		for (int i = 0; names && names[i]; i++)
			free(names[i]);
		free(names);
		nt_log_errx("out of memory taking %d fds from systemd", n);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		struct nt_sd_fd *p = &f->v[i];
		p->fd = SD_LISTEN_FDS_START + i;
		snprintf(p->name, sizeof(p->name), "%s",
		         names && names[i] ? names[i] : "unknown");
		p->kind = nt_sd_fdname_parse(p->name, p->key, sizeof(p->key));
	}
	f->n = (size_t)n;
	for (int i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
	return 0;
}

struct nt_sd_fd *nt_sd_fds_find(struct nt_sd_fds *f, enum nt_sd_fd_kind kind,
                                const char *key)
{
	for (size_t i = 0; f && i < f->n; i++)
		if (f->v[i].fd >= 0 && f->v[i].kind == kind &&
		    !strcmp(f->v[i].key, key))
			return &f->v[i];
	return NULL;
}

void nt_sd_fds_free(struct nt_sd_fds *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].fd >= 0)
			close(f->v[i].fd);
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

/* ---- the fd store ------------------------------------------------------- */

bool nt_sd_store_enabled(void)
{
	return sd_store_max > 0;
}

static void store_full_warn(void)
{
	if (!atomic_exchange(&sd_full_logged, true))
		nt_log_warnx(
		    "the systemd fd store is full "
		    "(FileDescriptorStoreMax=%u): further clients will "
		    "not survive a restart",
		    sd_store_max);
}

/* reserve up to n places in the store; how many it got */
static unsigned store_reserve_upto(unsigned n)
{
	unsigned cur = atomic_load(&sd_stored), got;

	do {
		got = cur < sd_store_max ? NT_MIN(n, sd_store_max - cur) : 0;
		if (got == 0)
			break;
	} while (!atomic_compare_exchange_weak(&sd_stored, &cur, cur + got));
	if (got < n)
		store_full_warn();
	return got;
}

/* reserve n places in the store; false when it would overflow */
static bool store_reserve(unsigned n)
{
	unsigned got = store_reserve_upto(n);

	if (got < n)
		atomic_fetch_sub(&sd_stored, got);
	return got == n;
}

static void store_release(unsigned n)
{
	atomic_fetch_sub(&sd_stored, n);
}

void nt_sd_store_count_adopted(unsigned n)
{
	atomic_fetch_add(&sd_stored, n);
}

/*
 * sd_pid_notify_with_fds(), but never waiting: a worker must not stop
 * serving because PID 1 is slow to read its notifications. -EAGAIN when
 * its queue is full.
 */
static int notify_nowait(const char *msg, const int *fds, unsigned n)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * (NT_SD_GROUP_MAX + 1))];
	} cm;
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = strlen(msg)};
	struct msghdr mh = {.msg_name = &sd_addr,
	                    .msg_namelen = sd_addrlen,
	                    .msg_iov = &iov,
	                    .msg_iovlen = 1};

	if (!sd_addrlen || n > NT_SD_GROUP_MAX + 1)
		return -EINVAL;
	if (n) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int rc = sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int store_send(const char *name, const int *fds, unsigned n)
{
	char msg[NT_SD_FDNAME_MAX + 32];

	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	int rc = notify_nowait(msg, fds, n);
	if (rc == -EAGAIN && !atomic_exchange(&sd_busy_logged, true))
		nt_log_warnx("systemd is not keeping up with natterd's "
		             "notifications: some clients are not in the fd "
		             "store and will not survive a restart");
	else if (rc == 0)
		atomic_store(&sd_busy_logged, false);
	return rc;
}

/*
 * A lost removal heals itself: systemd drops a stored socket that hangs
 * up (ours are shut down before they are forgotten), and the next natterd
 * forgets a session whose socket is gone.
 */
static void store_remove(const char *name)
{
	char msg[NT_SD_FDNAME_MAX + 32];

	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	int rc = notify_nowait(msg, NULL, 0);
	if (rc < 0)
		nt_log(NT_LOG_DEBUG, -rc, "FDSTOREREMOVE %s", name);
}

int nt_sd_store_listener(const char *name, int fd)
{
	char fdname[NT_SD_FDNAME_MAX + 1];

	if (!nt_sd_store_enabled())
		return 0;
	if (!store_reserve(1))
		return -ENOSPC;
	snprintf(fdname, sizeof(fdname), "listener@%s", name);
	int rc = store_send(fdname, &fd, 1);
	if (rc < 0)
		store_release(1);
	return rc;
}

void nt_sd_forget_listener(const char *name)
{
	char fdname[NT_SD_FDNAME_MAX + 1];

	if (!nt_sd_store_enabled())
		return;
	snprintf(fdname, sizeof(fdname), "listener@%s", name);
	store_remove(fdname);
	store_release(1);
}

/* the longest header leaves room for the longest blob */
_Static_assert(sizeof(SESSION_MAGIC) - 1 + sizeof("listener=\n") - 1 +
                       NT_NAME_MAX + sizeof("socket=\n") - 1 + 20 +
                       sizeof("blob=\n") - 1 + 3 + NT_SD_BLOB_MAX <=
                   NT_SD_SESSION_SIZE,
               "a record holds its header and NT_SD_BLOB_MAX bytes");

void nt_sd_session_encode(const struct nt_sd_session *s,
                          char buf[NT_SD_SESSION_SIZE])
{
	size_t len = NT_MIN((size_t)s->blob_len, (size_t)NT_SD_BLOB_MAX);

	memset(buf, 0, NT_SD_SESSION_SIZE);
	int n = snprintf(buf, NT_SD_SESSION_SIZE,
	                 SESSION_MAGIC "listener=%s\nsocket=%llu\nblob=%zu\n",
	                 s->listener, (unsigned long long)s->socket, len);
	memcpy(buf + n, s->blob, len);
}

static bool session_name_ok(const char *v, size_t len)
{
	if (len == 0 || len > NT_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!strchr(
		        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		        "0123456789_.-",
		        v[i]))
			return false;
	return true;
}

/* a decimal uint64_t of len digits */
static bool session_number(const char *v, size_t len, uint64_t *out)
{
	uint64_t n = 0;

	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9' ||
		    n > (UINT64_MAX - (uint64_t)(v[i] - '0')) / 10)
			return false;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	*out = n;
	return true;
}

/* what a version 1 record said of a chat session */
struct session_v1 {
	char nick[NT_NICK_LIMIT + 1];
	char room[NT_ROOM_MAX + 1];
};

/* one "key=value" line of a record into s (v1: of a version 1 record,
 * else NULL); false if it is invalid */
static bool session_field(struct nt_sd_session *s, struct session_v1 *v1,
                          const char *line, size_t len)
{
	const char *eq = memchr(line, '=', len);

	if (!eq || memchr(line, '\0', len))
		return false;
	size_t klen = (size_t)(eq - line), vlen = len - klen - 1;
	const char *v = eq + 1;
	if (klen == 8 && !memcmp(line, "listener", 8)) {
		if (!session_name_ok(v, vlen))
			return false;
		memcpy(s->listener, v, vlen);
		s->listener[vlen] = '\0';
	} else if (v1 && klen == 4 && !memcmp(line, "nick", 4)) {
		if (vlen && !nt_text_nick_valid(v, vlen, NT_NICK_LIMIT))
			return false;
		memcpy(v1->nick, v, vlen);
		v1->nick[vlen] = '\0';
	} else if (v1 && klen == 4 && !memcmp(line, "room", 4)) {
		if (vlen && nt_text_room_normalize(v, vlen, v1->room) < 0)
			return false;
		if (!vlen)
			v1->room[0] = '\0';
	} else if (klen == 6 && !memcmp(line, "socket", 6)) {
		return session_number(v, vlen, &s->socket);
	}
	/* other keys: written by a later version; not needed here */
	return true;
}

/* "blob=LEN" into s->blob_len; false if it is no such line */
static bool session_blob_line(struct nt_sd_session *s, const char *line,
                              size_t len)
{
	uint64_t n;

	if (len < 5 || memcmp(line, "blob=", 5) ||
	    !session_number(line + 5, len - 5, &n) || n > NT_SD_BLOB_MAX)
		return false;
	s->blob_len = (uint32_t)n;
	return true;
}

/* a version 1 record: text lines, zero-padded; its chat session (if it
 * had one) becomes the blob its service reads */
static int session_decode_v1(const char *buf, size_t len,
                             struct nt_sd_session *s)
{
	struct session_v1 v1 = {0};

	len = strnlen(buf, len); /* the padding */
	for (size_t pos = sizeof(SESSION_V1) - 1; pos < len;) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		if (!nl)
			return -EINVAL; /* a cut record */
		if (!session_field(s, &v1, buf + pos, (size_t)(nl - buf - pos)))
			return -EINVAL;
		pos = (size_t)(nl - buf) + 1;
	}
	if (v1.nick[0] || v1.room[0])
		s->blob_len =
		    (uint32_t)snprintf((char *)s->blob, sizeof(s->blob),
		                       "nick=%s\nroom=%s\n", v1.nick, v1.room);
	return 0;
}

/* header lines up to "blob=LEN", LEN bytes, then only padding */
static int session_decode_v2(const char *buf, size_t len,
                             struct nt_sd_session *s)
{
	for (size_t pos = sizeof(SESSION_MAGIC) - 1; pos < len;) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		if (!nl)
			return -EINVAL; /* a cut record, or no blob line */
		const char *line = buf + pos;
		size_t llen = (size_t)(nl - line);
		pos += llen + 1;
		if (!session_blob_line(s, line, llen)) {
			if (!session_field(s, NULL, line, llen))
				return -EINVAL;
			continue;
		}
		if (s->blob_len > len - pos)
			return -EINVAL;
		memcpy(s->blob, buf + pos, s->blob_len);
		for (pos += s->blob_len; pos < len; pos++)
			if (buf[pos])
				return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

int nt_sd_session_decode(const char *buf, size_t len, struct nt_sd_session *out)
{
	struct nt_sd_session s;
	int rc = -EINVAL;

	memset(&s, 0, sizeof(s));
	if (len >= sizeof(SESSION_MAGIC) - 1 &&
	    !memcmp(buf, SESSION_MAGIC, sizeof(SESSION_MAGIC) - 1))
		rc = session_decode_v2(buf, len, &s);
	else if (len >= sizeof(SESSION_V1) - 1 &&
	         !memcmp(buf, SESSION_V1, sizeof(SESSION_V1) - 1))
		rc = session_decode_v1(buf, len, &s);
	if (rc < 0 || !s.listener[0])
		return -EINVAL;
	*out = s;
	return 0;
}

/* ---- clients in the store ---------------------------------------------- */

/* write (s) or clear (NULL) the record at slot of g */
static int slot_write(struct sd_group *g, unsigned slot,
                      const struct nt_sd_session *s)
{
	char buf[NT_SD_SESSION_SIZE];

	if (s)
		nt_sd_session_encode(s, buf);
	else
		memset(buf, 0, sizeof(buf));
	ssize_t w = pwrite(g->memfd, buf, sizeof(buf),
	                   (off_t)slot * NT_SD_SESSION_SIZE);
	if (w == (ssize_t)sizeof(buf))
		return 0;
	return w < 0 ? -errno : -EIO;
}

static void waiting_unlink(struct nt_sd_client *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		sd_waiting.head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		sd_waiting.tail = c->prev;
	c->prev = c->next = NULL;
}

static struct sd_group *group_new(void)
{
	struct sd_group *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->memfd = memfd_create("natter-sessions", MFD_CLOEXEC);
	if (g->memfd < 0) {
		free(g);
		return NULL;
	}
	snprintf(g->name, sizeof(g->name), "client@%llx-%llu",
	         (unsigned long long)sd_generation,
	         (unsigned long long)atomic_fetch_add(&sd_client_seq, 1));
	return g;
}

/*
 * Let go of one handle on g; forgotten: its client is gone for good. The
 * group leaves the store with its last client, not with a handover.
 */
static void group_put(struct sd_group *g, bool forgotten)
{
	if (forgotten && atomic_fetch_sub(&g->clients, 1) == 1) {
		store_remove(g->name);
		store_release(1); /* the memfd */
	}
	if (atomic_fetch_sub(&g->refs, 1) == 1) {
		close(g->memfd);
		free(g);
	}
}

/* the first n waiting clients are in g now */
static void group_fill(struct sd_group *g, struct nt_sd_client **batch,
                       unsigned n)
{
	atomic_init(&g->clients, n);
	atomic_init(&g->refs, n);
	for (unsigned i = 0; i < n; i++) {
		waiting_unlink(batch[i]);
		batch[i]->state = SD_KEPT;
		batch[i]->g = g;
		batch[i]->slot = i;
	}
}

/* their records, one after the other, as slots 0..n-1 of g */
static int group_write(struct sd_group *g, struct nt_sd_client **batch,
                       unsigned n)
{
	char *table = malloc((size_t)n * NT_SD_SESSION_SIZE);
	struct stat st;

	if (!table)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		batch[i]->s.socket =
		    fstat(batch[i]->fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
		nt_sd_session_encode(&batch[i]->s,
		                     table + (size_t)i * NT_SD_SESSION_SIZE);
	}
	size_t len = (size_t)n * NT_SD_SESSION_SIZE;
	ssize_t w = pwrite(g->memfd, table, len, 0);
	free(table);
	if (w == (ssize_t)len)
		return 0;
	return w < 0 ? -errno : -EIO;
}

/*
 * The first waiting clients as one group: their records written, then one
 * message with the memfd and their sockets. -EAGAIN: systemd is busy and
 * they wait on; any other error: they are not kept, and said so once.
 */
static int group_send(void)
{
	struct nt_sd_client *batch[NT_SD_GROUP_MAX];
	int fds[NT_SD_GROUP_MAX + 1];
	struct sd_group *g = NULL;
	unsigned n = 0;
	int rc = -ENOSPC;

	for (struct nt_sd_client *c = sd_waiting.head; c && n < NT_SD_GROUP_MAX;
	     c = c->next)
		batch[n++] = c;
	unsigned got = store_reserve_upto(n + 1);
	if (got < 2)
		goto fail;
	n = got - 1; /* those that fit; the others try again next time */
	rc = -ENOMEM;
	if (!(g = group_new()) || (rc = group_write(g, batch, n)) < 0)
		goto fail;
	fds[0] = g->memfd;
	for (unsigned i = 0; i < n; i++)
		fds[i + 1] = batch[i]->fd;
	if ((rc = store_send(g->name, fds, n + 1)) < 0)
		goto fail;
	group_fill(g, batch, n);
	return 0;
fail:
	store_release(got);
	if (g) {
		close(g->memfd);
		free(g);
	}
	if (rc == -EAGAIN)
		return rc;
	if (rc != -ENOSPC)
		nt_log(NT_LOG_WARNING, -rc,
		       "cannot keep %u client%s in the systemd fd store", n,
		       n == 1 ? "" : "s");
	for (unsigned i = 0; i < n; i++) {
		waiting_unlink(batch[i]);
		batch[i]->state = SD_NOT_KEPT;
	}
	return rc;
}

void nt_sd_clients_flush(uint64_t now, bool all)
{
	unsigned tries = 0;

	if (!sd_waiting.head || (!all && now < sd_waiting.due))
		return;
	for (unsigned n = 0; sd_waiting.head && (all || n < FLUSH_GROUPS);
	     n++) {
		if (group_send() != -EAGAIN)
			continue;
		if (!all)
			break;
		/* a handover: what is not sent now is never sent */
		if (++tries == HANDOVER_TRIES)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
	}
	while (all && sd_waiting.head) {
		sd_waiting.head->state = SD_NOT_KEPT;
		waiting_unlink(sd_waiting.head);
	}
	sd_waiting.due = now + NT_SD_FLUSH_MS;
}

uint64_t nt_sd_clients_due(void)
{
	return sd_waiting.head ? sd_waiting.due : UINT64_MAX;
}

struct nt_sd_client *nt_sd_client_store(int fd, const struct nt_sd_session *s)
{
	struct nt_sd_client *c;

	if (!nt_sd_store_enabled() || !(c = calloc(1, sizeof(*c))))
		return NULL;
	c->state = SD_WAITING;
	c->fd = fd;
	c->s = *s;
	if (!sd_waiting.head)
		sd_waiting.due = nt_now_ms() + NT_SD_FLUSH_MS;
	c->prev = sd_waiting.tail;
	if (sd_waiting.tail)
		sd_waiting.tail->next = c;
	else
		sd_waiting.head = c;
	sd_waiting.tail = c;
	return c;
}

void nt_sd_client_update(struct nt_sd_client *c, const struct nt_sd_session *s)
{
	int rc;

	if (!c)
		return;
	uint64_t socket = c->s.socket;
	c->s = *s;
	c->s.socket = socket;
	if (c->state == SD_KEPT && (rc = slot_write(c->g, c->slot, &c->s)) < 0)
		nt_log(NT_LOG_WARNING, -rc, "cannot update %s", c->g->name);
}

void nt_sd_client_forget(struct nt_sd_client *c)
{
	if (!c)
		return;
	if (c->state == SD_WAITING)
		waiting_unlink(c);
	if (c->state == SD_KEPT) {
		/* first: from here on no natterd takes it back */
		slot_write(c->g, c->slot, NULL);
		store_release(1); /* its socket: systemd drops it, shut down */
		group_put(c->g, true);
	}
	free(c);
}

void nt_sd_client_release(struct nt_sd_client *c)
{
	if (!c)
		return;
	if (c->state == SD_WAITING)
		waiting_unlink(c);
	if (c->state == SD_KEPT)
		group_put(c->g, false);
	free(c);
}

bool nt_sd_client_kept(const struct nt_sd_client *c)
{
	return c && c->state == SD_KEPT;
}

/* ---- stored clients coming back ----------------------------------------- */

static bool fd_is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* shut down (systemd drops its copy on the hang-up) and close */
static void fd_drop(struct nt_sd_fd *p)
{
	if (fd_is_socket(p->fd))
		shutdown(p->fd, SHUT_RDWR);
	close(p->fd);
	p->fd = -1;
}

/* a socket closed before the restart (by us, or reset) */
static bool fd_hung_up(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1 &&
	       (p.revents & (POLLHUP | POLLERR | POLLNVAL));
}

static bool is_member(const struct nt_sd_fd *p, const char *key)
{
	return p->fd >= 0 && p->kind == NT_SD_FD_CLIENT && !strcmp(p->key, key);
}

/* drop every fd of the group client@KEY and the group; why: NULL, quietly */
static void group_drop(struct nt_sd_fds *f, const char *key, const char *why)
{
	char name[NT_SD_FDNAME_MAX + 1];

	snprintf(name, sizeof(name), "client@%s", key);
	if (why)
		nt_log_warnx("stored clients %s dropped: %s", name, why);
	for (size_t i = 0; i < f->n; i++)
		if (is_member(&f->v[i], key))
			fd_drop(&f->v[i]);
	store_remove(name);
}

/* the valid records of memfd into rec (cleared or refused ones have no
 * listener: their sockets are closed); bad counts the refused */
static int group_read(int memfd, struct nt_sd_session *rec, size_t *n,
                      size_t *bad)
{
	size_t size = (size_t)NT_SD_GROUP_MAX * NT_SD_SESSION_SIZE;
	char *buf = malloc(size);

	if (!buf)
		return -ENOMEM;
	ssize_t r = pread(memfd, buf, size, 0);
	if (r < 0) {
		free(buf);
		return -errno;
	}
	*n = (size_t)r / NT_SD_SESSION_SIZE;
	for (size_t i = 0; i < *n; i++) {
		const char *p = buf + i * NT_SD_SESSION_SIZE;
		if (nt_sd_session_decode(p, NT_SD_SESSION_SIZE, &rec[i]) == 0)
			continue;
		memset(&rec[i], 0, sizeof(rec[i]));
		/* a cleared record is all zeros; anything else is refused */
		if (p[0] || memcmp(p, p + 1, NT_SD_SESSION_SIZE - 1))
			(*bad)++;
	}
	free(buf);
	return 0;
}

/*
 * The record of socket fd, among n; -1 for none. A record without a
 * socket (from a natterd that stored a client alone) is its group's only
 * socket's.
 */
static long record_find(const struct nt_sd_session *rec, size_t n, int fd,
                        size_t sockets)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (rec[i].listener[0] &&
		    (rec[i].socket == (uint64_t)st.st_ino ||
		     (rec[i].socket == 0 && sockets == 1)))
			return (long)i;
	return -1;
}

/* the memfd of the group client@KEY, or NULL; how many sockets it has */
static struct nt_sd_fd *group_memfd(struct nt_sd_fds *f, const char *key,
                                    size_t *sockets, size_t *memfds)
{
	struct nt_sd_fd *mem = NULL;

	*sockets = *memfds = 0;
	for (size_t i = 0; i < f->n; i++) {
		if (!is_member(&f->v[i], key))
			continue;
		if (fd_is_socket(f->v[i].fd)) {
			(*sockets)++;
		} else {
			mem = &f->v[i];
			(*memfds)++;
		}
	}
	return *memfds == 1 ? mem : NULL;
}

/* hand the live sockets of g to adopt(); how many */
static size_t
group_adopt(struct nt_sd_fds *f, struct sd_group *g, const char *key,
            const struct nt_sd_session *rec, size_t nrec, size_t sockets,
            void (*adopt)(void *arg, int fd, struct nt_sd_client *c,
                          const struct nt_sd_session *s),
            void *arg)
{
	size_t adopted = 0;

	for (size_t i = 0; i < f->n; i++) {
		struct nt_sd_fd *p = &f->v[i];
		if (!is_member(p, key))
			continue;
		long slot = record_find(rec, nrec, p->fd, sockets);
		struct nt_sd_client *c = NULL;
		if (slot < 0 || fd_hung_up(p->fd) ||
		    !(c = calloc(1, sizeof(*c)))) {
			/* closed before the restart: it stays closed */
			if (slot >= 0)
				slot_write(g, (unsigned)slot, NULL);
			fd_drop(p);
			continue;
		}
		c->state = SD_KEPT;
		c->g = g;
		c->slot = (unsigned)slot;
		c->s = rec[slot];
		atomic_fetch_add(&g->clients, 1);
		atomic_fetch_add(&g->refs, 1);
		nt_sd_store_count_adopted(1);
		int fd = p->fd;
		p->fd = -1;
		adopt(arg, fd, c, &c->s);
		adopted++;
	}
	return adopted;
}

/* the group client@KEY: its clients to adopt(), or all of it dropped */
static size_t group_take(struct nt_sd_fds *f, const char *key,
                         void (*adopt)(void *arg, int fd,
                                       struct nt_sd_client *c,
                                       const struct nt_sd_session *s),
                         void *arg)
{
	size_t sockets, memfds, nrec = 0, bad = 0, adopted;
	struct nt_sd_fd *mem = group_memfd(f, key, &sockets, &memfds);
	struct nt_sd_session *rec = NULL;
	struct sd_group *g = NULL;

	if (!mem) {
		group_drop(f, key,
		           memfds ? "more than one session memfd"
		                  : "no session memfd");
		return 0;
	}
	if (!sockets) {
		group_drop(f, key, NULL); /* every client had left */
		return 0;
	}
	if (!(rec = calloc(NT_SD_GROUP_MAX, sizeof(*rec))) ||
	    !(g = calloc(1, sizeof(*g))) ||
	    group_read(mem->fd, rec, &nrec, &bad) < 0) {
		free(rec);
		free(g);
		group_drop(f, key, "unreadable sessions");
		return 0;
	}
	if (bad)
		nt_log_warnx(
		    "stored clients %s: %zu session record%s refused "
		    "(not one natterd wrote); their clients are closed",
		    mem->name, bad, bad == 1 ? "" : "s");
	g->memfd = mem->fd;
	mem->fd = -1;
	snprintf(g->name, sizeof(g->name), "%s", mem->name);
	/* our own handle while the clients go out: they may be forgotten
	 * before the last is handed over */
	atomic_init(&g->clients, 1);
	atomic_init(&g->refs, 1);
	nt_sd_store_count_adopted(1);
	adopted = group_adopt(f, g, key, rec, nrec, sockets, adopt, arg);
	free(rec);
	group_put(g, true); /* out of the store if none was adopted */
	return adopted;
}

size_t nt_sd_clients_take(struct nt_sd_fds *f,
                          void (*adopt)(void *arg, int fd,
                                        struct nt_sd_client *c,
                                        const struct nt_sd_session *s),
                          void *arg)
{
	char key[NT_SD_FDNAME_MAX + 1];
	size_t adopted = 0;

	for (size_t i = 0; f && i < f->n; i++) {
		if (f->v[i].fd < 0 || f->v[i].kind != NT_SD_FD_CLIENT)
			continue;
		/* a copy: every fd of the group, this one too, is taken */
		snprintf(key, sizeof(key), "%s", f->v[i].key);
		adopted += group_take(f, key, adopt, arg);
	}
	return adopted;
}
