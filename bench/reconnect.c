/*
 * reconnect: how fast N libnatter clients come back after natterd is
 * killed and started again on the same port, and how hard they knock
 * while doing so. Loopback only.
 *
 *   reconnect NATTERD [-n CLIENTS] [-r RESTARTS] [-u UP_MS] [-d DOWN_MS]
 *             [--old]
 *
 * natterd runs on a throwaway config with its sd_notify socket pointed
 * here, so "ready" is its READY=1, not a probe that would add a connect.
 * Each round: the clients are up; after UP_MS natterd gets SIGKILL and is
 * started again DOWN_MS (0) later, the clients driven meanwhile; the round ends
 * when every client has restored a new session. Printed per round and as
 * medians: ready to the last client back, ready to the median client, and the
 * peak rate of connect attempts (100 ms windows) from the kill on and from
 * ready on. --old runs the clients with the library's former backoff defaults
 * (500 ms doubling to 30 s, reset only after 30 s up) for comparison.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "natter.h"

#define ROUNDS_MAX  50
#define CLIENTS_MAX 1000
#define ROUND_MS    120000 /* a round that takes longer is a failure */
#define BUCKET_MS   100
#define BUCKETS     (ROUND_MS / BUCKET_MS)

struct cl {
	natter_client *c;
	int sessions;
	double up_at; /* when the last session was restored */
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void on_connected(natter_client *c, int n, void *data)
{
	struct cl *cl = data;
	(void)c;
	cl->sessions = n;
	cl->up_at = now_ms();
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static pid_t start_natterd(const char *natterd, const char *dir,
                           const char *notify)
{
	char conf[512], log[512];
	pid_t pid;

	snprintf(conf, sizeof(conf), "%s/natterd.conf", dir);
	snprintf(log, sizeof(log), "%s/natterd.log", dir);
	if ((pid = fork()) != 0)
		return pid;
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	setenv("NOTIFY_SOCKET", notify, 1);
	execl(natterd, natterd, "-c", conf, (char *)NULL);
	_exit(127);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static struct cl cls[CLIENTS_MAX];
static struct pollfd pfd[CLIENTS_MAX + 1];

static unsigned long long attempts(int n)
{
	unsigned long long sum = 0;
	struct natter_stats st;

	for (int i = 0; i < n; i++) {
		natter_client_stats(cls[i].c, &st);
		sum += st.attempts;
	}
	return sum;
}

/*
 * Drive every client for up to ms, or until each has at least `want`
 * sessions (want > 0); a READY=1 on the notify socket is time-stamped
 * into *ready. Returns 0, or -1 on time out.
 */
static int drive(int n, int nfd, double ms, int want, double *ready)
{
	double end = now_ms() + ms;

	for (;;) {
		double t = now_ms();
		int all = want > 0;
		for (int i = 0; i < n && all; i++)
			all = cls[i].sessions >= want;
		if (all)
			return 0;
		if (t >= end)
			return want > 0 ? -1 : 0;
		int wait = (int)(end - t) + 1;
		for (int i = 0; i < n; i++) {
			int to = natter_client_timeout(cls[i].c);
			if (to >= 0 && to < wait)
				wait = to;
			pfd[i].fd = natter_client_fd(cls[i].c);
			pfd[i].events = (short)natter_client_events(cls[i].c);
			pfd[i].revents = 0;
		}
		pfd[n].fd = nfd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		if (wait > 5)
			wait = 5; /* keeps the attempt sampling fine-grained */
		if (poll(pfd, (nfds_t)n + 1, wait) < 0 && errno != EINTR)
			return -1;
		if (pfd[n].revents & POLLIN) {
			char buf[512];
			ssize_t got = recv(nfd, buf, sizeof(buf) - 1, 0);
			if (got > 0) {
				buf[got] = '\0';
				if (strstr(buf, "READY=1") && ready)
					*ready = now_ms();
			}
		}
		for (int i = 0; i < n; i++)
			if (pfd[i].revents ||
			    natter_client_timeout(cls[i].c) == 0)
				natter_client_process(cls[i].c);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: reconnect NATTERD [-n CLIENTS] [-r RESTARTS] "
	                "[-u UP_MS] [-d DOWN_MS] [--old]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int n = 100, rounds = 5, up_ms = 2000, down_ms = 0, old = 0;
	const char *natterd = NULL;
	char dir[] = "/tmp/natter-reconnect.XXXXXX", path[512], notify[100];
	static double storm[BUCKETS];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--old"))
			old = 1;
		else if (!strcmp(argv[i], "-n") && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-r") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-u") && i + 1 < argc)
			up_ms = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-d") && i + 1 < argc)
			down_ms = atoi(argv[++i]);
		else if (argv[i][0] != '-' && !natterd)
			natterd = argv[i];
		else
			usage();
	}
	if (!natterd || n < 1 || n > CLIENTS_MAX || rounds < 1 ||
	    rounds > ROUNDS_MAX || up_ms < 0 || down_ms < 0 ||
	    down_ms > ROUND_MS / 2)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		return perror("mkdtemp"), 1;

	int port = free_port();
	snprintf(path, sizeof(path), "%s/natterd.conf", dir);
	FILE *f = fopen(path, "w");
	if (port < 0 || !f)
		return perror("config"), 1;
	fprintf(f,
	        "max_connections = %d;\nlog_level = \"warning\";\n"
	        "limits = { per_ip = 0; };\n"
	        "listeners = ( { name = \"bench\"; service = \"chat\"; "
	        "family = \"ipv4\"; address = \"127.0.0.1\"; port = %d; "
	        "backlog = 4096; } );\n",
	        n * 2 + 16, port);
	fclose(f);

	snprintf(notify, sizeof(notify), "%s/notify", dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", notify);
	int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (nfd < 0 || bind(nfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return perror("notify socket"), 1;

	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	for (int i = 0; i < n; i++) {
		struct natter_options o;
		natter_options_init(&o);
		o.host = "127.0.0.1";
		o.port = portstr;
		o.retry_first_connect = true;
		o.cb.connected = on_connected;
		o.data = &cls[i];
		if (old) {
			o.reconnect_initial_ms = 500;
			o.reconnect_max_ms = 30000;
			o.stable_ms = 30000;
		}
		int err;
		if (!(cls[i].c = natter_client_new(&o, &err))) {
			fprintf(stderr, "natter_client_new: %s\n",
			        natter_strerror(err));
			return 1;
		}
	}

	double ready = 0;
	pid_t pid = start_natterd(natterd, dir, notify);
	int rc = 1;
	if (pid < 0 || drive(n, nfd, ROUND_MS, 1, &ready) < 0) {
		fprintf(stderr, "reconnect: the clients did not connect\n");
		goto done;
	}

	double all_v[ROUNDS_MAX], med_v[ROUNDS_MAX], pk_v[ROUNDS_MAX],
	    pkr_v[ROUNDS_MAX];
	printf("%s defaults, %d clients, %d restarts, %d ms up, %d ms "
	       "down\n",
	       old ? "old" : "new", n, rounds, up_ms, down_ms);
	for (int r = 0; r < rounds; r++) {
		drive(n, nfd, up_ms, 0, NULL);
		int want = cls[0].sessions + 1;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		double killed = now_ms();
		ready = 0;
		pid = -1;

		/* drive in 5 ms steps, sampling the attempt counter */
		memset(storm, 0, sizeof(storm));
		unsigned long long a0 = attempts(n), prev = a0;
		int done_round = 0;
		while (!done_round && now_ms() - killed < ROUND_MS) {
			if (pid < 0 && now_ms() - killed >= down_ms &&
			    (pid = start_natterd(natterd, dir, notify)) < 0)
				goto done;
			drive(n, nfd, 5, 0, &ready);
			unsigned long long a = attempts(n);
			int b = (int)((now_ms() - killed) / BUCKET_MS);
			if (b < BUCKETS)
				storm[b] += (double)(a - prev);
			prev = a;
			done_round = ready > 0;
			for (int i = 0; i < n && done_round; i++)
				done_round = cls[i].sessions >= want;
		}
		if (!done_round) {
			fprintf(stderr, "reconnect: round %d timed out\n", r);
			goto done;
		}
		double back[CLIENTS_MAX], last = 0, peak = 0, peak_ready = 0;
		for (int i = 0; i < n; i++) {
			back[i] = cls[i].up_at - ready;
			last = back[i] > last ? back[i] : last;
		}
		int rb = (int)((ready - killed) / BUCKET_MS);
		for (int b = 0; b < BUCKETS; b++) {
			double rate = storm[b] * 1000 / BUCKET_MS;
			peak = rate > peak ? rate : peak;
			if (b >= rb && rate > peak_ready)
				peak_ready = rate;
		}
		all_v[r] = last;
		med_v[r] = median(back, n);
		pk_v[r] = peak;
		pkr_v[r] = peak_ready;
		printf("restart %d: down %.0f ms, ready->all back %.0f ms, "
		       "median client %.0f ms, peak %.0f connects/s "
		       "(%.0f/s after ready), %llu attempts\n",
		       r + 1, ready - killed, last, med_v[r], peak, peak_ready,
		       prev - a0);
		fflush(stdout);
	}
	printf("median of %d: ready->all back %.0f ms, median client %.0f ms, "
	       "peak %.0f connects/s, %.0f/s after ready\n",
	       rounds, median(all_v, rounds), median(med_v, rounds),
	       median(pk_v, rounds), median(pkr_v, rounds));
	rc = 0;
done:
	for (int i = 0; i < n; i++)
		natter_client_free(cls[i].c);
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	close(nfd);
	unlink(notify);
	snprintf(path, sizeof(path), "%s/natterd.conf", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/natterd.log", dir);
	unlink(path);
	rmdir(dir);
	return rc;
}
