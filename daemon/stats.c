/*
 * Sums the per-thread counters into one snapshot, on demand.
 */
#include <stdio.h>
#include <string.h>

#include "admit.h"
#include "stats.h"
#include "worker.h"

static void stats_add_worker(struct nt_stats *s,
                             const struct nt_worker_stats *w)
{
	s->opened += NT_STAT_GET(w->opened);
	s->closed += NT_STAT_GET(w->closed);
	s->bytes_in += NT_STAT_GET(w->bytes_in);
	s->bytes_out += NT_STAT_GET(w->bytes_out);
	s->timeouts += NT_STAT_GET(w->timeouts);
}

void nt_stats_collect(struct nt_stats *out, const struct nt_admit *a,
                      struct nt_worker *const *workers, size_t n)
{
	memset(out, 0, sizeof(*out));
	if (a) {
		const struct nt_admit_stats *as = &a->stats;
		out->accepted = NT_STAT_GET(as->accepted);
		out->refused_full = NT_STAT_GET(as->refused_full);
		out->refused_per_ip = NT_STAT_GET(as->refused_per_ip);
		out->refused_nofd = NT_STAT_GET(as->refused_nofd);
		out->accept_errors = NT_STAT_GET(as->accept_errors);
	}
	for (size_t i = 0; i < n; i++)
		stats_add_worker(out, &workers[i]->stats);
	/* opened and closed are read at slightly different moments */
	out->open = out->opened > out->closed ? out->opened - out->closed : 0;
}

int nt_stats_format(const struct nt_stats *s, char *buf, size_t size)
{
	return snprintf(
	    buf, size,
	    "accepted %llu, refused %llu (full %llu, per-ip %llu, "
	    "no fd %llu), open %llu, closed %llu (timed out %llu), "
	    "bytes in %llu, bytes out %llu",
	    (unsigned long long)s->accepted,
	    (unsigned long long)(s->refused_full + s->refused_per_ip +
	                         s->refused_nofd),
	    (unsigned long long)s->refused_full,
	    (unsigned long long)s->refused_per_ip,
	    (unsigned long long)s->refused_nofd, (unsigned long long)s->open,
	    (unsigned long long)s->closed, (unsigned long long)s->timeouts,
	    (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out);
}
