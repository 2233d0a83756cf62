/*
 * Timing policy: the reconnect delay (exponential ceiling, full jitter,
 * as in the AWS architecture blog's "Exponential Backoff and Jitter") and
 * the send pacer. Pure but for the seed, so that the unit tests can draw
 * thousands of delays.
 */
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "natter-int.h"

void natter__rng_seed(struct natter__rng *r, uint64_t seed)
{
	if (!seed && getrandom(&seed, sizeof(seed), GRND_NONBLOCK) !=
	                 (ssize_t)sizeof(seed)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
		       ((uint64_t)getpid() << 40);
	}
	/* xorshift must not start at 0; splitmix the seed for spread */
	seed += 0x9e3779b97f4a7c15ull;
	seed = (seed ^ (seed >> 30)) * 0xbf58476d1ce4e5b9ull;
	seed = (seed ^ (seed >> 27)) * 0x94d049bb133111ebull;
	seed ^= seed >> 31;
	r->s = seed ? seed : 1;
}

/* xorshift64* */
uint64_t natter__rng_next(struct natter__rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

uint64_t natter__rng_upto(struct natter__rng *r, uint64_t n)
{
	if (n == UINT64_MAX)
		return natter__rng_next(r);
	/* reject the top partial range so every value is equally likely */
	uint64_t span = n + 1;
	uint64_t limit = UINT64_MAX - UINT64_MAX % span;
	uint64_t x;
	do
		x = natter__rng_next(r);
	while (x >= limit);
	return x % span;
}

int natter__backoff_ceiling(int attempt, int initial_ms, int cap_ms)
{
	int64_t c = initial_ms;

	for (int i = 1; i < attempt && c < cap_ms; i++)
		c *= 2;
	return (int)(c < cap_ms ? c : cap_ms);
}

int natter__backoff_delay(struct natter__rng *r, int attempt, int initial_ms,
                          int cap_ms)
{
	int ceiling = natter__backoff_ceiling(attempt, initial_ms, cap_ms);

	return (int)natter__rng_upto(r, (uint64_t)ceiling);
}

/*
 * The attempt count after a restored session ended, up_ms after it came
 * up. A restored session proves the server is back, so by default
 * (stable_ms 0) the count starts again: a server restarted soon after is
 * retried within the first ceilings, not at the cap reached during the
 * last outage. A positive stable_ms keeps the count for sessions shorter
 * than that, for servers that accept and then fall over.
 */
int natter__backoff_after_session(int attempt, uint64_t up_ms, int stable_ms)
{
	return up_ms >= (uint64_t)stable_ms ? 0 : attempt;
}

void natter__pacer_init(struct natter__pacer *p, int rate, int burst,
                        uint64_t now)
{
	p->rate = rate;
	p->burst = burst > 0 ? burst : 1;
	p->tokens = (uint64_t)p->burst * 1000;
	p->at = now;
}

static void pacer_refill(struct natter__pacer *p, uint64_t now)
{
	uint64_t cap = (uint64_t)p->burst * 1000;

	if (now > p->at) {
		p->tokens += (now - p->at) * (uint64_t)p->rate;
		if (p->tokens > cap)
			p->tokens = cap;
	}
	p->at = now;
}

size_t natter__pacer_allow(struct natter__pacer *p, uint64_t now)
{
	if (!p->rate)
		return SIZE_MAX;
	pacer_refill(p, now);
	return (size_t)(p->tokens / 1000);
}

void natter__pacer_take(struct natter__pacer *p, size_t lines)
{
	if (!p->rate)
		return;
	uint64_t t = (uint64_t)lines * 1000;
	p->tokens = t > p->tokens ? 0 : p->tokens - t;
}

uint64_t natter__pacer_next(const struct natter__pacer *p, uint64_t now)
{
	if (!p->rate || p->tokens >= 1000)
		return now;
	return p->at +
	       (1000 - p->tokens + (uint64_t)p->rate - 1) / (uint64_t)p->rate;
}
