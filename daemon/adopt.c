/*
 * Taking back, at start, the clients the previous natterd kept in
 * systemd's fd store. Their saved session comes from a memfd that is not
 * trusted: a client whose listener or session no longer fits is told so
 * and let go rather than served half-restored.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adopt.h"
#include "conn.h"
#include "listener.h"
#include "log.h"
#include "service.h"

static void adopt_refuse(int fd, struct nt_sd_client *sc, const char *why)
{
	static const char line[] = "*** natterd was restarted and no longer "
	                           "serves this port; bye\r\n";
	ssize_t w =
	    send(fd, line, sizeof(line) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);

	(void)w;
	nt_log_notice("a client kept across the restart was disconnected: %s",
	              why);
	shutdown(fd, SHUT_RDWR);
	close(fd);
	nt_sd_client_forget(sc);
}

static void adopt_client(void *arg, int fd, struct nt_sd_client *sc,
                         const struct nt_sd_session *sess)
{
	struct nt_server *s = arg;
	const struct nt_listener_conf *lc;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct nt_peer peer = {.family = AF_UNIX};

	if (!nt_listener_set_find(s->set, sess->listener, &lc)) {
		adopt_refuse(fd, sc, "its listener is no longer configured");
		return;
	}
	/* the memfd is not trusted: its service reads only what it wrote */
	const struct nt_service_def *sv = nt_service_get(lc->service);
	if (sv->session_check &&
	    sv->session_check(sess->blob, sess->blob_len) < 0) {
		adopt_refuse(fd, sc, "its saved session is not valid");
		return;
	}
	struct nt_conn_restore *r = calloc(1, sizeof(*r));
	int fl = fcntl(fd, F_GETFL);
	if (!r || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		free(r);
		adopt_refuse(fd, sc, "out of resources");
		return;
	}
	r->store = sc;
	r->session = *sess;
	/* a client that left meanwhile has no peer: it reads EOF soon */
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		nt_peer_from_sockaddr(&peer, (struct sockaddr *)&ss, len);
	nt_admit_adopt(&s->admit, fd, lc, &peer, r);
}

void nt_adopt_clients(struct nt_server *s, struct nt_sd_fds *fds)
{
	size_t n = nt_sd_clients_take(fds, adopt_client, s);

	if (!n)
		return;
	if (!nt_server_sync(s))
		nt_log_warnx("the workers took long to take the clients over");
	nt_log_notice("took over %zu client%s kept by systemd across the "
	              "restart",
	              n, n == 1 ? "" : "s");
}
