/*
 * STATUS= and the watchdog. Pings wait for every worker's heartbeat, so
 * that a stuck thread, not a dead process alone, gets natterd restarted.
 */
#include <errno.h>
#include <stdio.h>

#include "log.h"
#include "sd.h"
#include "status.h"
#include "util.h"

/* STATUS= is refreshed this often (only sent when it changed) */
#define STATUS_PERIOD_MS 2000
/* while a thread has not moved, how often the watchdog looks again */
#define WATCHDOG_RECHECK_MS 100
/* the threads beat at least once a second (their epoll timeout): one that
 * has not for this long since the last ping is stuck, not idle */
#define WATCHDOG_STUCK_MS 2500

void nt_status_text(struct nt_server *s, char *buf, size_t size)
{
	unsigned conns = atomic_load(&s->admit.open);
	size_t n = s->set ? s->set->n : 0;
	char services[64];

	nt_services_status(s->svc_shared, services, sizeof(services));
	snprintf(buf, size, "%u connection%s%s, %zu listener%s%s%s", conns,
	         conns == 1 ? "" : "s", services, n, n == 1 ? "" : "s",
	         s->note[0] ? "; " : "", s->note);
}

static void status_refresh(struct nt_server *s)
{
	char text[256];

	nt_status_text(s, text, sizeof(text));
	nt_sd_status(text);
}

/* the first worker whose heartbeat did not move since the last ping, as
 * "worker N", or NULL when all did */
static const char *watchdog_laggard(struct nt_server *s, char *buf, size_t size)
{
	for (size_t i = 0; i < s->n_workers; i++)
		if (atomic_load(&s->workers[i]->heartbeat) == s->beats[i]) {
			snprintf(buf, size, "worker %zu", i);
			return buf;
		}
	return NULL;
}

static void watchdog_snapshot(struct nt_server *s)
{
	for (size_t i = 0; i < s->n_workers; i++)
		s->beats[i] = atomic_load(&s->workers[i]->heartbeat);
}

/*
 * Ping at half the interval, but only once every thread has moved since
 * the last ping: a stuck worker stops the pings and systemd restarts us.
 */
static void watchdog_tick(struct nt_server *s, uint64_t now)
{
	uint64_t half = nt_sd_watchdog_usec() / 2000;
	char who[32];
	struct nt_log_ctx ctx = {.msgid = NT_MSGID_WATCHDOG};

	if (!half || now < s->wd_last_ms + half)
		return;
	const char *lag = watchdog_laggard(s, who, sizeof(who));
	if (lag) {
		/* threads beat at least once a second: one that did not
		 * within WATCHDOG_STUCK_MS is stuck, not merely idle */
		if (!s->wd_stuck && now - s->wd_last_ms >= WATCHDOG_STUCK_MS) {
			nt_logc(NT_LOG_WARNING, &ctx,
			        "watchdog: %s has not run for %llu ms; "
			        "holding back the keep-alive",
			        lag, (unsigned long long)(now - s->wd_last_ms));
			s->wd_stuck = true;
			snprintf(s->note, sizeof(s->note), "%s is stuck", lag);
		}
		s->wd_waiting = true;
		return;
	}
	s->wd_waiting = false;
	if (s->wd_stuck) {
		nt_logc(NT_LOG_NOTICE, &ctx,
		        "watchdog: every thread runs again after %llu ms",
		        (unsigned long long)(now - s->wd_last_ms));
		s->wd_stuck = false;
		s->note[0] = '\0';
	}
	nt_sd_watchdog_ping();
	watchdog_snapshot(s);
	s->wd_last_ms = now;
}

void nt_status_tick(struct nt_server *s)
{
	uint64_t now = nt_now_ms();

	watchdog_tick(s, now);
	if (now >= s->status_next_ms) {
		status_refresh(s);
		s->status_next_ms = now + STATUS_PERIOD_MS;
	}
}

int nt_status_timeout(const struct nt_server *s)
{
	uint64_t now = nt_now_ms();
	uint64_t next = s->status_next_ms;
	uint64_t half = nt_sd_watchdog_usec() / 2000;

	if (half)
		next = NT_MIN(next, s->wd_waiting ? now + WATCHDOG_RECHECK_MS
		                                  : s->wd_last_ms + half);
	return next <= now ? 0 : (int)NT_MIN(next - now, (uint64_t)60000);
}

void nt_status_ready(struct nt_server *s)
{
	char text[256];

	nt_status_text(s, text, sizeof(text));
	nt_sd_ready(text);
}

void nt_status_start(struct nt_server *s)
{
	watchdog_snapshot(s);
	s->wd_last_ms = nt_now_ms();
	s->status_next_ms = s->wd_last_ms + STATUS_PERIOD_MS;
}
