/*
 * Listening sockets. Opening one is the only place where a listener's
 * address, family and socket options turn into a socket, and the only place
 * that decides whether an existing unix socket file may be replaced.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "sd.h"
#include "util.h"

static void listener_log(const struct nt_listener *l);

static int listener_ip_addr(const struct nt_listener_conf *lc,
                            struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (lc->family == NT_FAMILY_IPV4) {
		struct sockaddr_in *in = (void *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(lc->port);
		if (inet_pton(AF_INET, lc->address[0] ? lc->address : "0.0.0.0",
		              &in->sin_addr) != 1)
			return -EINVAL;
		*len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (void *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(lc->port);
		if (inet_pton(AF_INET6, lc->address[0] ? lc->address : "::",
		              &in6->sin6_addr) != 1)
			return -EINVAL;
		*len = sizeof(*in6);
	}
	return 0;
}

static int setopt_int(int fd, int level, int name, int value)
{
	return setsockopt(fd, level, name, &value, sizeof(value)) < 0 ? -errno
	                                                              : 0;
}

static int listener_open_ip(struct nt_listener *l,
                            const struct nt_listener_conf *lc)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char where[NT_ADDRSTR_MAX];
	int fd = -1, rc;

	if ((rc = listener_ip_addr(lc, &ss, &len)) < 0) {
		nt_log_errx("listener \"%s\": invalid address \"%s\"", lc->name,
		            lc->address);
		return rc;
	}
	nt_sockaddr_format((struct sockaddr *)&ss, len, where, sizeof(where));
	fd =
	    socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		nt_log_err("listener \"%s\": cannot create a socket for %s",
		           lc->name, where);
		return rc;
	}
	if (lc->reuseaddr && (rc = setopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1)))
		goto fail_opt;
	if (lc->reuseport && (rc = setopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)))
		goto fail_opt;
	if (ss.ss_family == AF_INET6 &&
	    (rc = setopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY,
	                     lc->family == NT_FAMILY_IPV6 && lc->v6only)))
		goto fail_opt;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		rc = -errno;
		if (rc == -EADDRINUSE)
			nt_log_errx("listener \"%s\": cannot bind %s: %s "
			            "(reuseaddr %s): %s",
			            lc->name, where, strerror(EADDRINUSE),
			            lc->reuseaddr ? "on" : "off",
			            lc->reuseaddr
			                ? "another socket is listening there"
			                : "another socket or a recently "
			                  "closed connection holds it; "
			                  "reuseaddr = true allows the "
			                  "latter");
		else
			nt_log(NT_LOG_ERR, -rc,
			       "listener \"%s\": cannot bind %s", lc->name,
			       where);
		goto fail;
	}
	l->fd = fd;
	return 0;

fail_opt:
	nt_log(NT_LOG_ERR, -rc, "listener \"%s\": cannot set socket options",
	       lc->name);
fail:
	close(fd);
	return rc;
}

/*
 * A socket file left by a process that died is replaced; one that something
 * still listens on, or a file that is no socket, is never touched.
 */
static int listener_clear_stale(const struct nt_listener_conf *lc,
                                const struct sockaddr_un *un, socklen_t len)
{
	struct stat st;
	int fd, rc;

	if (lstat(lc->path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		nt_log_errx("listener \"%s\": %s exists and is not a socket; "
		            "not replacing it",
		            lc->name, lc->path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)un, len) == 0 ? 0 : -errno;
	close(fd);
	if (rc == 0) {
		nt_log_errx("listener \"%s\": cannot bind %s: another process "
		            "is listening on it",
		            lc->name, lc->path);
		return -EADDRINUSE;
	}
	if (rc != -ECONNREFUSED) {
		nt_log(NT_LOG_ERR, -rc,
		       "listener \"%s\": cannot tell whether %s is in use",
		       lc->name, lc->path);
		return rc;
	}
	nt_log_notice("listener \"%s\": replacing stale socket %s", lc->name,
	              lc->path);
	if (unlink(lc->path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/*
 * Set the mode of the socket file l bound, and of nothing else: the path
 * may lead elsewhere by now (a symlink to another file, say, while natterd
 * is still root). The file is opened without following a link and must be
 * our socket by device and inode; the mode is then set through that
 * descriptor's /proc link (fchmod refuses O_PATH descriptors), which
 * names that very inode, not the path. -ESTALE when it is not ours.
 */
static int listener_chmod(const struct nt_listener *l, mode_t mode)
{
	char proc[64];
	struct stat st;
	int fd, rc = 0;

	fd = open(l->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ELOOP ? -ESTALE : -errno;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else if (!S_ISSOCK(st.st_mode) || st.st_dev != l->dev ||
	         st.st_ino != l->ino)
		rc = -ESTALE;
	else if (chmod(proc, mode) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int listener_open_unix(struct nt_listener *l,
                              const struct nt_listener_conf *lc)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct stat st;
	socklen_t len;
	int fd = -1, rc;

	size_t plen = strlen(lc->path);
	if (plen == 0 || plen >= sizeof(un.sun_path)) {
		nt_log_errx("listener \"%s\": unix path too long", lc->name);
		return -ENAMETOOLONG;
	}
	memcpy(un.sun_path, lc->path, plen + 1);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
	if ((rc = listener_clear_stale(lc, &un, len)) < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		nt_log_err("listener \"%s\": cannot create a unix socket",
		           lc->name);
		return rc;
	}
	/*
	 * Bind under the umask that yields exactly the configured mode (at
	 * most 0777): no chmod by name afterwards, which would follow
	 * whatever the path has become by then.
	 */
	mode_t old = umask(0777 & ~lc->mode);
	rc = bind(fd, (struct sockaddr *)&un, len) < 0 ? -errno : 0;
	umask(old);
	if (rc < 0) {
		nt_log(NT_LOG_ERR, -rc, "listener \"%s\": cannot bind %s",
		       lc->name, lc->path);
		goto fail;
	}
	if (lstat(lc->path, &st) < 0) {
		rc = -errno;
		nt_log_err("listener \"%s\": cannot stat %s", lc->name,
		           lc->path);
		goto fail;
	}
	memcpy(l->path, lc->path, plen + 1);
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->fd = fd;
	/* a default ACL on the directory overrides the umask */
	if ((st.st_mode & 07777) != lc->mode &&
	    (rc = listener_chmod(l, lc->mode)) < 0) {
		nt_log(NT_LOG_ERR, -rc,
		       "listener \"%s\": cannot set mode %04o on %s", lc->name,
		       (unsigned)lc->mode, lc->path);
		nt_listener_close(l);
		return rc;
	}
	return 0;
fail:
	close(fd);
	return rc;
}

int nt_listener_open(struct nt_listener *l, const struct nt_listener_conf *lc)
{
	int rc;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	snprintf(l->name, sizeof(l->name), "%s", lc->name);
	l->service = lc->service;
	l->family = lc->family;

	rc = lc->family == NT_FAMILY_UNIX ? listener_open_unix(l, lc)
	                                  : listener_open_ip(l, lc);
	if (rc < 0)
		return rc;
	if (listen(l->fd, lc->backlog) < 0) {
		rc = -errno;
		nt_log_err("listener \"%s\": cannot listen", lc->name);
		goto fail;
	}
	l->addrlen = sizeof(l->addr);
	if (getsockname(l->fd, (struct sockaddr *)&l->addr, &l->addrlen) < 0) {
		rc = -errno;
		nt_log_err("listener \"%s\": getsockname", lc->name);
		goto fail;
	}
	listener_log(l);
	return 0;
fail:
	nt_listener_close(l);
	return rc;
}

static const char *const origin_note[] = {
    [NT_LISTENER_BOUND] = "",
    [NT_LISTENER_SOCKET] = " (socket passed by systemd)",
    [NT_LISTENER_STORED] = " (kept by systemd across the restart)",
};

static void listener_log(const struct nt_listener *l)
{
	char where[NT_ADDRSTR_MAX];
	struct nt_log_ctx ctx = {.msgid = NT_MSGID_LISTENING,
	                         .listener = l->name};

	nt_listener_format(l, where, sizeof(where));
	nt_logc(NT_LOG_INFO, &ctx, "listening on %s (%s) listener=%s%s", where,
	        nt_service_name(l->service), l->name, origin_note[l->origin]);
}

static int getsockopt_int(int fd, int level, int name, int *value)
{
	socklen_t len = sizeof(*value);

	return getsockopt(fd, level, name, value, &len) < 0 ? -errno : 0;
}

int nt_listener_adopt(struct nt_listener *l, const struct nt_listener_conf *lc,
                      int fd, enum nt_listener_origin origin)
{
	int type = 0, listening = 0, rc;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	snprintf(l->name, sizeof(l->name), "%s", lc->name);
	l->service = lc->service;
	l->origin = origin;
	if ((rc = getsockopt_int(fd, SOL_SOCKET, SO_TYPE, &type)) < 0 ||
	    (rc = getsockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening)) <
	        0 ||
	    type != SOCK_STREAM || !listening) {
		nt_log_errx("listener \"%s\": the fd systemd passed is not a "
		            "listening stream socket",
		            lc->name);
		return rc < 0 ? rc : -ENOTSOCK;
	}
	l->addrlen = sizeof(l->addr);
	if (getsockname(fd, (struct sockaddr *)&l->addr, &l->addrlen) < 0) {
		rc = -errno;
		nt_log_err("listener \"%s\": getsockname", lc->name);
		return rc;
	}
	switch (l->addr.ss_family) {
	case AF_UNIX:
		l->family = NT_FAMILY_UNIX;
		break;
	case AF_INET:
		l->family = NT_FAMILY_IPV4;
		break;
	case AF_INET6:
		l->family = NT_FAMILY_IPV6;
		break;
	default:
		nt_log_errx("listener \"%s\": the socket systemd passed is of "
		            "family %d, not IPv4, IPv6 or unix",
		            lc->name, l->addr.ss_family);
		return -EAFNOSUPPORT;
	}
	/* the workers need it non-blocking; systemd's may not be */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		rc = -errno;
		nt_log_err("listener \"%s\": fcntl", lc->name);
		return rc;
	}
	l->fd = fd;
	if (origin == NT_LISTENER_STORED && !nt_listener_matches(l, lc)) {
		l->fd = -1;
		return -ESTALE;
	}
	listener_log(l);
	return 0;
}

bool nt_listener_matches(const struct nt_listener *l,
                         const struct nt_listener_conf *lc)
{
	struct sockaddr_storage want;
	socklen_t len;
	int v6only = 0;

	if (lc->family == NT_FAMILY_UNIX) {
		const struct sockaddr_un *un = (const void *)&l->addr;
		return l->addr.ss_family == AF_UNIX &&
		       l->addrlen > offsetof(struct sockaddr_un, sun_path) &&
		       !strncmp(un->sun_path, lc->path, sizeof(un->sun_path));
	}
	if (listener_ip_addr(lc, &want, &len) < 0 ||
	    want.ss_family != l->addr.ss_family)
		return false;
	if (want.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&want;
		const struct sockaddr_in *b = (const void *)&l->addr;
		return a->sin_addr.s_addr == b->sin_addr.s_addr &&
		       (!lc->port || a->sin_port == b->sin_port);
	}
	const struct sockaddr_in6 *a = (const void *)&want;
	const struct sockaddr_in6 *b = (const void *)&l->addr;
	if (getsockopt_int(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only) < 0)
		return false;
	return !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) &&
	       (!lc->port || a->sin6_port == b->sin6_port) &&
	       !!v6only == (lc->family == NT_FAMILY_IPV6 && lc->v6only);
}

bool nt_listener_conf_same_endpoint(const struct nt_listener_conf *a,
                                    const struct nt_listener_conf *b)
{
	if (a->family != b->family)
		return false;
	if (a->family == NT_FAMILY_UNIX)
		return !strcmp(a->path, b->path);
	return !strcmp(a->address, b->address) && a->port == b->port &&
	       (a->family != NT_FAMILY_IPV6 || a->v6only == b->v6only);
}

void nt_listener_close(struct nt_listener *l)
{
	struct stat st;

	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	/* never remove a file that another process has since put there */
	if (l->path[0] && lstat(l->path, &st) == 0 && st.st_dev == l->dev &&
	    st.st_ino == l->ino)
		unlink(l->path);
	l->path[0] = '\0';
}

void nt_listener_release(struct nt_listener *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	l->path[0] = '\0';
}

void nt_listener_format(const struct nt_listener *l, char *buf, size_t size)
{
	if (l->family == NT_FAMILY_UNIX && l->path[0])
		snprintf(buf, size, "%s", l->path);
	else
		nt_sockaddr_format((const struct sockaddr *)&l->addr,
		                   l->addrlen, buf, size);
}

/* ---- sets --------------------------------------------------------------- */

struct nt_listener_set *nt_listener_set_new(struct nt_config *cfg)
{
	struct nt_listener_set *set = calloc(1, sizeof(*set));
	size_t cap = cfg->n_listeners ? cfg->n_listeners : 1;

	if (!set)
		return NULL;
	set->l = calloc(cap, sizeof(*set->l));
	set->lc = calloc(cap, sizeof(*set->lc));
	if (!set->l || !set->lc) {
		nt_listener_set_free(set);
		return NULL;
	}
	set->cfg = nt_config_ref(cfg);
	return set;
}

void nt_listener_set_free(struct nt_listener_set *set)
{
	if (!set)
		return;
	free(set->l);
	free(set->lc);
	nt_config_unref(set->cfg);
	free(set);
}

struct nt_listener *nt_listener_set_find(const struct nt_listener_set *set,
                                         const char *name,
                                         const struct nt_listener_conf **lc)
{
	for (size_t i = 0; set && i < set->n; i++)
		if (!strcmp(set->l[i]->name, name)) {
			if (lc)
				*lc = set->lc[i];
			return set->l[i];
		}
	return NULL;
}

bool nt_listener_set_has(const struct nt_listener_set *set,
                         const struct nt_listener *l)
{
	for (size_t i = 0; set && i < set->n; i++)
		if (set->l[i] == l)
			return true;
	return false;
}

void nt_listener_set_close(struct nt_listener_set *set,
                           const struct nt_listener_set *keep)
{
	for (size_t i = 0; set && i < set->n; i++)
		if (!nt_listener_set_has(keep, set->l[i])) {
			nt_listener_close(set->l[i]);
			free(set->l[i]);
		}
	nt_listener_set_free(set);
}

static void set_add(struct nt_listener_set *set, struct nt_listener *l,
                    const struct nt_listener_conf *lc)
{
	set->l[set->n] = l;
	set->lc[set->n++] = lc;
}

/* bind lc anew, and keep it in the fd store when that is on */
static int listener_bind(struct nt_listener *l,
                         const struct nt_listener_conf *lc)
{
	int rc = nt_listener_open(l, lc);

	if (rc < 0 || !nt_sd_store_enabled())
		return rc;
	if (nt_sd_store_listener(lc->name, l->fd) == 0)
		l->stored = true;
	else
		nt_log_warnx("listener \"%s\": not in the systemd fd store: a "
		             "restart will refuse connections for a moment",
		             lc->name);
	return rc;
}

/* a listener natterd kept in the fd store, if it still fits lc */
static int listener_take_stored(struct nt_listener *l,
                                const struct nt_listener_conf *lc,
                                struct nt_sd_fd *f)
{
	nt_sd_store_count_adopted(1);
	int rc = nt_listener_adopt(l, lc, f->fd, NT_LISTENER_STORED);
	if (rc == 0) {
		l->stored = true;
		f->fd = -1;
		return 0;
	}
	if (rc == -ESTALE)
		nt_log_notice("listener \"%s\": the socket kept across the "
		              "restart is no longer where the configuration "
		              "says; binding anew",
		              lc->name);
	close(f->fd);
	f->fd = -1;
	nt_sd_forget_listener(lc->name);
	return rc;
}

static int listener_take_or_open(struct nt_listener *l,
                                 const struct nt_listener_conf *lc,
                                 struct nt_sd_fds *fds)
{
	struct nt_sd_fd *f = nt_sd_fds_find(fds, NT_SD_FD_SOCKET, lc->name);
	int rc;

	if (f) {
		if ((rc = nt_listener_adopt(l, lc, f->fd, NT_LISTENER_SOCKET)))
			return rc;
		f->fd = -1;
		return 0;
	}
	f = nt_sd_fds_find(fds, NT_SD_FD_LISTENER, lc->name);
	if (f && listener_take_stored(l, lc, f) == 0)
		return 0;
	return listener_bind(l, lc);
}

/* passed fds that no listener took: an error for socket activation */
static int listener_leftovers(struct nt_sd_fds *fds)
{
	int rc = 0;

	for (size_t i = 0; i < fds->n; i++) {
		struct nt_sd_fd *f = &fds->v[i];
		if (f->fd < 0 || f->kind == NT_SD_FD_CLIENT)
			continue;
		if (f->kind == NT_SD_FD_SOCKET) {
			nt_log_errx(
			    "systemd passed a socket named \"%s\" (fd "
			    "%d), but no listener is named so: set "
			    "FileDescriptorName= in the socket unit to a "
			    "listener's name",
			    f->name, f->fd);
			rc = -EINVAL;
			continue;
		}
		if (f->kind == NT_SD_FD_LISTENER) {
			nt_log_notice(
			    "listener \"%s\" is no longer configured: "
			    "closing the socket kept across the restart",
			    f->key);
			nt_sd_store_count_adopted(1);
			nt_sd_forget_listener(f->key);
		} else {
			nt_log_warnx("closing fd %d named \"%s\" from systemd: "
			             "natterd does not know that name",
			             f->fd, f->name);
		}
		close(f->fd);
		f->fd = -1;
	}
	return rc;
}

int nt_listener_set_open(struct nt_config *cfg, struct nt_sd_fds *fds,
                         struct nt_listener_set **out)
{
	struct nt_listener_set *set = nt_listener_set_new(cfg);
	int rc = -ENOMEM;

	if (!set)
		goto fail_nomem;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct nt_listener_conf *lc = &cfg->listeners[i];
		struct nt_listener *l = calloc(1, sizeof(*l));
		if (!l)
			goto fail_nomem;
		if ((rc = listener_take_or_open(l, lc, fds)) < 0) {
			free(l);
			goto fail;
		}
		set_add(set, l, lc);
	}
	if ((rc = listener_leftovers(fds)) < 0)
		goto fail;
	*out = set;
	return 0;
fail_nomem:
	nt_log_errx("out of memory opening the listeners");
fail:
	nt_listener_set_close(set, NULL);
	return rc;
}

static void listener_update_mode(const struct nt_listener *l,
                                 const struct nt_listener_conf *lc)
{
	int rc;

	if (!l->path[0]) {
		/* kept across a restart: which file is ours is not known */
		nt_log_notice("listener \"%s\": mode %04o applies when %s is "
		              "next bound (restart)",
		              lc->name, (unsigned)lc->mode, lc->path);
		return;
	}
	rc = listener_chmod(l, lc->mode);
	if (rc == -ESTALE)
		nt_log_warnx("listener \"%s\": %s is no longer the socket "
		             "natterd bound; not changing its mode",
		             lc->name, l->path);
	else if (rc < 0)
		nt_log(NT_LOG_WARNING, -rc,
		       "listener \"%s\": cannot set mode %04o on %s", lc->name,
		       (unsigned)lc->mode, l->path);
}

/* a kept listener whose configuration changed in ways a socket can follow */
static void listener_update(struct nt_listener *l,
                            const struct nt_listener_conf *olc,
                            const struct nt_listener_conf *lc)
{
	if (l->origin == NT_LISTENER_SOCKET) {
		if (!nt_listener_conf_same_endpoint(olc, lc))
			nt_log_notice("listener \"%s\": its socket comes from "
			              "systemd, so the address in the socket "
			              "unit applies, not the configured one",
			              lc->name);
		return;
	}
	if (lc->backlog != olc->backlog && listen(l->fd, lc->backlog) < 0)
		nt_log_warn("listener \"%s\": cannot change the backlog",
		            lc->name);
	if (lc->family == NT_FAMILY_UNIX && lc->mode != olc->mode)
		listener_update_mode(l, lc);
	if (lc->reuseaddr != olc->reuseaddr || lc->reuseport != olc->reuseport)
		nt_log_notice("listener \"%s\": reuseaddr and reuseport "
		              "changes apply when it is next bound (restart)",
		              lc->name);
	if (lc->service != olc->service)
		nt_log_notice("listener \"%s\": new connections get %s; open "
		              "ones keep %s",
		              lc->name, nt_service_name(lc->service),
		              nt_service_name(olc->service));
}

int nt_listener_set_reload(const struct nt_listener_set *old,
                           struct nt_config *cfg, struct nt_listener_set **out)
{
	struct nt_listener_set *set = nt_listener_set_new(cfg);
	int rc = -ENOMEM;

	if (!set)
		goto fail_nomem;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct nt_listener_conf *lc = &cfg->listeners[i], *olc;
		struct nt_listener *l =
		    nt_listener_set_find(old, lc->name, &olc);
		if (l && (l->origin == NT_LISTENER_SOCKET ||
		          nt_listener_conf_same_endpoint(olc, lc))) {
			listener_update(l, olc, lc);
			set_add(set, l, lc);
			continue;
		}
		if (!(l = calloc(1, sizeof(*l))))
			goto fail_nomem;
		if ((rc = listener_bind(l, lc)) < 0) {
			free(l);
			goto fail;
		}
		set_add(set, l, lc);
	}
	*out = set;
	return 0;
fail_nomem:
	nt_log_errx("out of memory opening the listeners");
fail:
	/* the new ones that made it into the store leave it again */
	for (size_t i = 0; set && i < set->n; i++)
		if (!nt_listener_set_has(old, set->l[i]) && set->l[i]->stored)
			nt_sd_forget_listener(set->l[i]->name);
	nt_listener_set_close(set, old);
	return rc;
}
