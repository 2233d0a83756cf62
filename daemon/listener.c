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
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "util.h"

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
	 * Bind under a umask that already yields the configured mode, so the
	 * file is never reachable with looser permissions, then chmod to be
	 * exact whatever the umask allowed.
	 */
	mode_t old = umask(0777 & ~lc->mode);
	rc = bind(fd, (struct sockaddr *)&un, len) < 0 ? -errno : 0;
	umask(old);
	if (rc < 0) {
		nt_log(NT_LOG_ERR, -rc, "listener \"%s\": cannot bind %s",
		       lc->name, lc->path);
		goto fail;
	}
	if (chmod(lc->path, lc->mode) < 0 || lstat(lc->path, &st) < 0) {
		rc = -errno;
		nt_log_err("listener \"%s\": cannot set mode %04o on %s",
		           lc->name, (unsigned)lc->mode, lc->path);
		unlink(lc->path);
		goto fail;
	}
	memcpy(l->path, lc->path, plen + 1);
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->fd = fd;
	return 0;
fail:
	close(fd);
	return rc;
}

int nt_listener_open(struct nt_listener *l, const struct nt_listener_conf *lc)
{
	char where[NT_ADDRSTR_MAX];
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
	nt_listener_format(l, where, sizeof(where));
	nt_log_info("listening on %s (%s) listener=%s", where,
	            nt_service_name(l->service), l->name);
	return 0;
fail:
	nt_listener_close(l);
	return rc;
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

void nt_listener_format(const struct nt_listener *l, char *buf, size_t size)
{
	if (l->family == NT_FAMILY_UNIX && l->path[0])
		snprintf(buf, size, "%s", l->path);
	else
		nt_sockaddr_format((const struct sockaddr *)&l->addr,
		                   l->addrlen, buf, size);
}
