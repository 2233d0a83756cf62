/*
 * The systemd side of natterd: sd_notify messages, the watchdog interval,
 * the fds systemd hands over at start, and the fd store that keeps
 * listening sockets and client connections (with a small session record
 * in a memfd each) open across a restart.
 */
#include <errno.h>
#include <fcntl.h>
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

#define SESSION_MAGIC "natter-session 1\n"
#define STATUS_MAX    256

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

struct nt_sd_client {
	int memfd;
	char name[NT_SD_FDNAME_MAX + 1];
};

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

/* reserve n places in the store; false when it would overflow */
static bool store_reserve(unsigned n)
{
	unsigned cur = atomic_load(&sd_stored);

	do {
		if (cur + n > sd_store_max) {
			if (!atomic_exchange(&sd_full_logged, true))
				nt_log_warnx("the systemd fd store is full "
				             "(FileDescriptorStoreMax=%u): "
				             "further clients will not survive "
				             "a restart",
				             sd_store_max);
			return false;
		}
	} while (!atomic_compare_exchange_weak(&sd_stored, &cur, cur + n));
	return true;
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
		char buf[CMSG_SPACE(sizeof(int) * 2)];
	} cm;
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = strlen(msg)};
	struct msghdr mh = {.msg_name = &sd_addr,
	                    .msg_namelen = sd_addrlen,
	                    .msg_iov = &iov,
	                    .msg_iovlen = 1};

	if (!sd_addrlen || n > 2)
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

void nt_sd_session_encode(const struct nt_sd_session *s,
                          char buf[NT_SD_SESSION_SIZE])
{
	memset(buf, 0, NT_SD_SESSION_SIZE);
	/* every field is bounded far below the record size */
	snprintf(buf, NT_SD_SESSION_SIZE,
	         SESSION_MAGIC "listener=%s\nnick=%s\nroom=%s\n", s->listener,
	         s->nick, s->room);
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

/* one "key=value" line of a record into s; false if it is invalid */
static bool session_field(struct nt_sd_session *s, const char *line, size_t len)
{
	const char *eq = memchr(line, '=', len);
	char room[NT_ROOM_MAX + 1];

	if (!eq)
		return false;
	size_t klen = (size_t)(eq - line), vlen = len - klen - 1;
	const char *v = eq + 1;
	if (klen == 8 && !memcmp(line, "listener", 8)) {
		if (!session_name_ok(v, vlen))
			return false;
		memcpy(s->listener, v, vlen);
		s->listener[vlen] = '\0';
	} else if (klen == 4 && !memcmp(line, "nick", 4)) {
		if (vlen && !nt_text_nick_valid(v, vlen, NT_NICK_LIMIT))
			return false;
		memcpy(s->nick, v, vlen);
		s->nick[vlen] = '\0';
	} else if (klen == 4 && !memcmp(line, "room", 4)) {
		if (vlen && nt_text_room_normalize(v, vlen, room) < 0)
			return false;
		snprintf(s->room, sizeof(s->room), "%s", vlen ? room : "");
	}
	/* other keys: written by a later version; not needed here */
	return true;
}

int nt_sd_session_decode(const char *buf, size_t len, struct nt_sd_session *out)
{
	struct nt_sd_session s;
	size_t magic = strlen(SESSION_MAGIC);

	memset(&s, 0, sizeof(s));
	len = strnlen(buf, len); /* the padding */
	if (len < magic || memcmp(buf, SESSION_MAGIC, magic))
		return -EINVAL;
	for (size_t pos = magic; pos < len;) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		if (!nl)
			return -EINVAL; /* a cut record */
		if (!session_field(&s, buf + pos, (size_t)(nl - buf - pos)))
			return -EINVAL;
		pos = (size_t)(nl - buf) + 1;
	}
	if (!s.listener[0])
		return -EINVAL;
	*out = s;
	return 0;
}

static int session_write(int memfd, const struct nt_sd_session *s)
{
	char buf[NT_SD_SESSION_SIZE];

	nt_sd_session_encode(s, buf);
	ssize_t w = pwrite(memfd, buf, sizeof(buf), 0);
	if (w == (ssize_t)sizeof(buf))
		return 0;
	return w < 0 ? -errno : -EIO;
}

struct nt_sd_client *nt_sd_client_store(int fd, const struct nt_sd_session *s)
{
	struct nt_sd_client *c;
	int rc;

	if (!nt_sd_store_enabled() || !store_reserve(2))
		return NULL;
	if (!(c = calloc(1, sizeof(*c))))
		goto fail;
	snprintf(c->name, sizeof(c->name), "client@%llx-%llu",
	         (unsigned long long)sd_generation,
	         (unsigned long long)atomic_fetch_add(&sd_client_seq, 1));
	c->memfd = memfd_create("natter-session", MFD_CLOEXEC);
	if (c->memfd < 0) {
		rc = -errno;
		goto fail_log;
	}
	if ((rc = session_write(c->memfd, s)) < 0)
		goto fail_log;
	int fds[2] = {fd, c->memfd};
	if ((rc = store_send(c->name, fds, 2)) == -EAGAIN)
		goto fail;
	if (rc < 0)
		goto fail_log;
	return c;
fail_log:
	nt_log(NT_LOG_WARNING, -rc,
	       "cannot keep a client in the systemd fd store");
fail:
	if (c && c->memfd >= 0)
		close(c->memfd);
	free(c);
	store_release(2);
	return NULL;
}

void nt_sd_client_update(struct nt_sd_client *c, const struct nt_sd_session *s)
{
	int rc;

	if (c && (rc = session_write(c->memfd, s)) < 0)
		nt_log(NT_LOG_WARNING, -rc, "cannot update %s", c->name);
}

void nt_sd_client_forget(struct nt_sd_client *c)
{
	if (!c)
		return;
	store_remove(c->name);
	store_release(2);
	nt_sd_client_release(c);
}

void nt_sd_client_release(struct nt_sd_client *c)
{
	if (!c)
		return;
	close(c->memfd);
	free(c);
}

/* ---- stored clients coming back ----------------------------------------- */

static bool fd_is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int session_read(int memfd, struct nt_sd_session *s)
{
	char buf[NT_SD_SESSION_SIZE + 1];

	ssize_t r = pread(memfd, buf, NT_SD_SESSION_SIZE, 0);
	if (r < 0)
		return -errno;
	buf[r] = '\0';
	return nt_sd_session_decode(buf, (size_t)r, s);
}

/* close and forget every fd of one client@KEY, and say why */
static void client_drop(struct nt_sd_fds *f, const char *key, const char *why)
{
	char name[NT_SD_FDNAME_MAX + 1];

	snprintf(name, sizeof(name), "client@%s", key);
	nt_log_warnx("stored client %s dropped: %s", name, why);
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].fd >= 0 && f->v[i].kind == NT_SD_FD_CLIENT &&
		    !strcmp(f->v[i].key, key)) {
			close(f->v[i].fd);
			f->v[i].fd = -1;
		}
	store_remove(name);
}

size_t nt_sd_clients_take(struct nt_sd_fds *f,
                          void (*adopt)(void *arg, int fd,
                                        struct nt_sd_client *c,
                                        const struct nt_sd_session *s),
                          void *arg)
{
	size_t adopted = 0;

	for (size_t i = 0; f && i < f->n; i++) {
		struct nt_sd_fd *a = &f->v[i], *b = NULL;
		struct nt_sd_session s;
		if (a->fd < 0 || a->kind != NT_SD_FD_CLIENT)
			continue;
		for (size_t j = i + 1; j < f->n && !b; j++)
			if (f->v[j].fd >= 0 &&
			    f->v[j].kind == NT_SD_FD_CLIENT &&
			    !strcmp(f->v[j].key, a->key))
				b = &f->v[j];
		if (!b || fd_is_socket(a->fd) == fd_is_socket(b->fd)) {
			client_drop(f, a->key, "no socket and session pair");
			continue;
		}
		struct nt_sd_fd *sock = fd_is_socket(a->fd) ? a : b;
		struct nt_sd_fd *mem = sock == a ? b : a;
		if (session_read(mem->fd, &s) < 0) {
			client_drop(f, a->key, "unreadable session");
			continue;
		}
		struct nt_sd_client *c = calloc(1, sizeof(*c));
		if (!c) {
			client_drop(f, a->key, "out of memory");
			continue;
		}
		c->memfd = mem->fd;
		snprintf(c->name, sizeof(c->name), "%s", a->name);
		mem->fd = -1;
		int fd = sock->fd;
		sock->fd = -1;
		nt_sd_store_count_adopted(2);
		adopt(arg, fd, c, &s);
		adopted++;
	}
	return adopted;
}
