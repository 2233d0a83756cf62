/*
 * refecho: the smallest correct single-threaded epoll echo server we could
 * write, the stand-in for what this machine can do at all. natterd's echo
 * figures in BENCHMARKS.md are ratios to it. Correct means: every byte
 * comes back, in order, with back-pressure (a client that does not read
 * stops being read) and half-close handled; nothing more.
 *
 *   refecho [-a ADDR] [-p PORT] [-b BACKLOG]
 *
 * Prints "listening on ADDR:PORT" once bound (PORT 0 picks one), runs
 * until SIGINT or SIGTERM.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE   (16 * 1024)
#define MAX_EVENTS 256

/* one per client; buf holds what the socket would not take yet */
struct client {
	int fd;
	size_t off, len;
	char buf[BUF_SIZE];
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void drop(int ep, struct client *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

static void watch(int ep, struct client *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};

	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what is pending; 0 all written, 1 the socket is full, -1 error. */
static int flush_pending(struct client *c)
{
	while (c->len > 0) {
		ssize_t n = send(c->fd, c->buf + c->off, c->len, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN ? 1 : -1;
		c->off += (size_t)n;
		c->len -= (size_t)n;
	}
	c->off = 0;
	return 0;
}

static void serve(int ep, struct client *c, uint32_t events)
{
	if (events & EPOLLOUT) {
		int r = flush_pending(c);
		if (r < 0)
			goto gone;
		if (r > 0)
			return;
		watch(ep, c, EPOLLIN);
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	while (c->len == 0) {
		ssize_t n = read(c->fd, c->buf, sizeof(c->buf));
		if (n == 0) {
			shutdown(c->fd, SHUT_WR);
			goto gone;
		}
		if (n < 0) {
			if (errno == EAGAIN)
				return;
			goto gone;
		}
		c->off = 0;
		c->len = (size_t)n;
		int r = flush_pending(c);
		if (r < 0)
			goto gone;
		if (r > 0) {
			/* the client does not read: neither do we */
			watch(ep, c, EPOLLOUT);
			return;
		}
		if ((size_t)n < sizeof(c->buf))
			return;
	}
	return;
gone:
	drop(ep, c);
}

static int open_listener(const char *addr, int port, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		len = sizeof(*sin6);
	} else {
		fprintf(stderr, "refecho: not a numeric address: %s\n", addr);
		return -1;
	}
	int fd =
	    socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(fd, backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		fprintf(stderr, "refecho: %s port %d: %s\n", addr, port,
		        strerror(errno));
		return -1;
	}
	printf(
	    "listening on %s%s%s:%u\n", ss.ss_family == AF_INET6 ? "[" : "",
	    addr, ss.ss_family == AF_INET6 ? "]" : "",
	    ntohs(ss.ss_family == AF_INET6 ? sin6->sin6_port : sin->sin_port));
	fflush(stdout);
	return fd;
}

static void accept_all(int ep, int lfd)
{
	int one = 1;

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or out of fds: try at the next wake
			         */
		struct client *c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->off = c->len = 0;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
		}
	}
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	int port = 0, backlog = 4096, opt;
	struct rlimit rl;

	while ((opt = getopt(argc, argv, "a:p:b:")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'b':
			backlog = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: refecho [-a ADDR] [-p PORT] "
			                "[-b BACKLOG]\n");
			return 2;
		}
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	int lfd = open_listener(addr, port, backlog);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || ep < 0)
		return 1;
	/* the listener is told apart by its NULL pointer */
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);

	struct epoll_event evs[MAX_EVENTS];
	while (!stop) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr)
				accept_all(ep, lfd);
			else
				serve(ep, evs[i].data.ptr, evs[i].events);
		}
	}
	return 0;
}
