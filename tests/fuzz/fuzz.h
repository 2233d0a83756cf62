/*
 * Shared by the libFuzzer harnesses: the entry points, a check that aborts
 * (libFuzzer and the replay driver both report an abort with its input), and
 * the chunk sizes that the first input byte picks for whole-versus-chunked
 * comparisons.
 */
#ifndef NT_FUZZ_H
#define NT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* a property that must hold: name it, then abort so the input is kept */
#define FUZZ_CHECK(cond, ...)                                                  \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
			        "%s:%d: property failed: %s: ", __FILE__,      \
			        __LINE__, #cond);                              \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			abort();                                               \
		}                                                              \
	} while (0)

/*
 * Chunk sizes for feeding an input in pieces. Seed bytes 0..63 give fixed
 * pieces of 1..64 bytes; the others a pseudo-random size of 1..16 bytes per
 * piece, so that splits land at every offset a state machine has.
 */
struct fuzz_chunker {
	uint32_t x;
	uint8_t fixed;
};

static inline void fuzz_chunker_init(struct fuzz_chunker *k, uint8_t seed)
{
	k->fixed = seed < 64 ? (uint8_t)(seed + 1) : 0;
	k->x = 0x9e3779b9u ^ seed;
}

static inline size_t fuzz_chunk(struct fuzz_chunker *k, size_t left)
{
	size_t n = k->fixed;

	if (!n) {
		k->x ^= k->x << 13;
		k->x ^= k->x >> 17;
		k->x ^= k->x << 5;
		n = 1 + k->x % 16;
	}
	return n < left ? n : left;
}

/* a growing byte log, to compare what two runs produced */
struct fuzz_log {
	uint8_t *p;
	size_t len, cap;
};

static inline void fuzz_log_put(struct fuzz_log *l, const void *d, size_t n)
{
	if (l->len + n > l->cap) {
		size_t cap = l->cap ? l->cap : 256;
		while (cap < l->len + n)
			cap *= 2;
		uint8_t *p = realloc(l->p, cap);
		if (!p)
			abort();
		l->p = p;
		l->cap = cap;
	}
	for (size_t i = 0; i < n; i++)
		l->p[l->len + i] = ((const uint8_t *)d)[i];
	l->len += n;
}

static inline int fuzz_log_same(const struct fuzz_log *a,
                                const struct fuzz_log *b)
{
	if (a->len != b->len)
		return 0;
	for (size_t i = 0; i < a->len; i++)
		if (a->p[i] != b->p[i])
			return 0;
	return 1;
}

static inline void fuzz_log_free(struct fuzz_log *l)
{
	free(l->p);
	l->p = NULL;
	l->len = l->cap = 0;
}

#endif
