/*
 * A main() for the harnesses when libFuzzer is not there (gcc builds): runs
 * each file given, or each file of each directory given, through
 * LLVMFuzzerTestOneInput once. Without arguments it replays the harness's
 * own seed corpus, $NT_SRCDIR/tests/fuzz/corpus/NAME for a program called
 * fuzz_NAME, which is how `make check` runs every harness over its corpus
 * and the crash inputs kept there. It runs from tests/fuzz/include, where
 * the config harness's @include names lead.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	for (size_t n; buf && (n = fread(buf + len, 1, cap - len, f)) > 0;) {
		len += n;
		if (len == cap) {
			uint8_t *p = realloc(buf, cap *= 2);
			if (!p)
				free(buf);
			buf = p;
		}
	}
	fclose(f);
	if (!buf) {
		fprintf(stderr, "replay: %s: out of memory\n", path);
		return -1;
	}
	/* a copy of exactly len bytes, so that ASan sees any overread */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

/* a file, or every regular file in a directory (not recursive) */
static int run_path(const char *path, unsigned *count)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	int rc = 0;
	for (struct dirent *e; (e = readdir(d));) {
		char sub[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (stat(sub, &st) == 0 && S_ISREG(st.st_mode)) {
			(*count)++;
			rc |= run_file(sub);
		}
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int rc = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			rc |= run_path(argv[i], &count);
	} else {
		const char *src = getenv("NT_SRCDIR");
		const char *base = strrchr(argv[0], '/');
		char dir[4096];

		base = base ? base + 1 : argv[0];
		/* libtool may run us as lt-fuzz_NAME */
		if (!strncmp(base, "lt-", 3))
			base += 3;
		if (strncmp(base, "fuzz_", 5) != 0) {
			fprintf(stderr,
			        "replay: cannot tell the harness from "
			        "the name %s; give a corpus\n",
			        argv[0]);
			return 2;
		}
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s",
		         src && *src ? src : ".", base + 5);
		char *abs = realpath(dir, NULL);
		if (!abs) {
			fprintf(stderr, "replay: %s: %s\n", dir,
			        strerror(errno));
			return 1;
		}
		/* inputs that @include a file find it there, as in fuzz-smoke
		 */
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/include",
		         src && *src ? src : ".");
		if (chdir(dir) < 0) {
			fprintf(stderr, "replay: %s: %s\n", dir,
			        strerror(errno));
			free(abs);
			return 1;
		}
		rc = run_path(abs, &count);
		free(abs);
	}
	printf("replay: %u inputs, no property failed\n", count);
	return rc ? 1 : 0;
}
