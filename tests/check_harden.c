/*
 * The process itself, hardened: core files off unless core_dumps = true
 * (checked in /proc/PID/limits), and, when started as root with user = ...,
 * the switch to that user after binding (checked in /proc/PID/status) with
 * the listeners still serving. The root-only cases say so and pass when
 * not run as root.
 */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nt_test.h"
#include "run_suite.h"

#define LISTENERS                                                              \
	"listeners = (\n"                                                      \
	" { name = \"echo\"; service = \"echo\"; address = \"127.0.0.1\"; "    \
	"port = 0; },\n"                                                       \
	" { name = \"chat\"; service = \"chat\"; address = \"127.0.0.1\"; "    \
	"port = 0; }\n);\n"

static struct nt_daemon d;

static void teardown(void)
{
	nt_daemon_cleanup(&d);
}

static void stop_ok(void)
{
	int code = nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS);

	if (code != 0)
		nt_daemon_dump_log(&d);
	ck_assert_int_eq(code, 0);
}

/* "unlimited" or a number, as /proc shows a limit */
static rlim_t parse_limit(const char *s)
{
	return !strncmp(s, "unlimited", 9) ? RLIM_INFINITY
	                                   : (rlim_t)strtoull(s, NULL, 10);
}

/* the daemon's core size limit, from /proc/PID/limits */
static struct rlimit core_limit(pid_t pid)
{
	char path[64], line[256], soft[32], hard[32];
	struct rlimit rl = {0, 0};
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	FILE *f = fopen(path, "re");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Max core file size %31s %31s", soft, hard) ==
		    2) {
			rl.rlim_cur = parse_limit(soft);
			rl.rlim_max = parse_limit(hard);
			found = true;
		}
	fclose(f);
	ck_assert_msg(found, "no core file size in %s", path);
	return rl;
}

/* the test's own core limit: the daemon inherits it; soft from want */
static struct rlimit set_own_core(bool soft_on)
{
	struct rlimit rl;

	ck_assert_int_eq(getrlimit(RLIMIT_CORE, &rl), 0);
	rl.rlim_cur = soft_on ? rl.rlim_max : 0;
	ck_assert_int_eq(setrlimit(RLIMIT_CORE, &rl), 0);
	return rl;
}

static void wait_reloaded(unsigned n)
{
	uint64_t deadline = nt_test_now_ms() + 10000;

	for (;;) {
		char *log = nt_daemon_log(&d);
		unsigned k = 0;
		for (const char *p = log; (p = strstr(p, "reloaded ")); p++)
			k++;
		free(log);
		if (k >= n)
			return;
		ck_assert_msg(nt_test_now_ms() < deadline,
		              "reload #%u not done", n);
		nt_sleep_ms(20);
	}
}

static void serving(void)
{
	int e = nt_daemon_connect(&d, "echo");
	ck_assert_int_eq(nt_echo_check(e, "hello\r\n", 7, 5000), 0);
	close(e);

	char line[256];
	int c = nt_daemon_connect(&d, "chat");
	ck_assert_int_gt(nt_read_line(c, line, sizeof(line), 5000), 0);
	ck_assert_msg(!strncmp(line, "*** Welcome to natter", 21), "chat: %s",
	              line);
	close(c);
}

/* ---- core files --------------------------------------------------------- */

/*
 * By default no core file: the soft RLIMIT_CORE is 0 even when natterd was
 * started with a higher one; the hard limit is left alone.
 */
START_TEST(test_core_off_by_default)
{
	struct rlimit own = set_own_core(true);

	nt_daemon_start(&d, NULL, LISTENERS);
	struct rlimit rl = core_limit(d.pid);
	ck_assert_msg(rl.rlim_cur == 0, "soft core limit %llu",
	              (unsigned long long)rl.rlim_cur);
	ck_assert(rl.rlim_max == own.rlim_max);
	if (own.rlim_max == 0)
		fprintf(stderr, "core files: the hard limit here is 0 already; "
		                "only the soft one was checked\n");
	serving();
	stop_ok();
}
END_TEST

/*
 * core_dumps = true: the soft limit is raised to the hard one, however low
 * it came; a reload to false brings it to 0 and back to true raises it.
 */
START_TEST(test_core_on_and_reload)
{
	struct rlimit own = set_own_core(false);

	nt_daemon_start(&d, NULL, "core_dumps = true;\n" LISTENERS);
	struct rlimit rl = core_limit(d.pid);
	ck_assert_msg(
	    rl.rlim_cur == own.rlim_max, "soft core limit %llu, hard %llu",
	    (unsigned long long)rl.rlim_cur, (unsigned long long)own.rlim_max);

	FILE *f = fopen(d.conf, "we");
	ck_assert_ptr_nonnull(f);
	fputs("core_dumps = false;\n" LISTENERS, f);
	ck_assert_int_eq(fclose(f), 0);
	kill(d.pid, SIGHUP);
	wait_reloaded(1);
	ck_assert(core_limit(d.pid).rlim_cur == 0);

	f = fopen(d.conf, "we");
	ck_assert_ptr_nonnull(f);
	fputs("core_dumps = true;\n" LISTENERS, f);
	ck_assert_int_eq(fclose(f), 0);
	kill(d.pid, SIGHUP);
	wait_reloaded(2);
	ck_assert(core_limit(d.pid).rlim_cur == own.rlim_max);
	serving();
	stop_ok();
}
END_TEST

/* ---- privilege drop (root only) ----------------------------------------- */

/* the four ids of a "Uid:" or "Gid:" line of /proc/PID/status, and Groups */
static void proc_ids(pid_t pid, const char *key, unsigned v[4])
{
	char path[64], line[512];
	size_t klen = strlen(key);
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) &&
		    sscanf(line + klen, "%u %u %u %u", &v[0], &v[1], &v[2],
		           &v[3]) == 4)
			found = true;
	fclose(f);
	ck_assert_msg(found, "no %s line in %s", key, path);
}

static char *proc_groups(pid_t pid)
{
	static char groups[512];
	char path[64], line[512];

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	groups[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Groups:", 7)) {
			char *p = line + 7;
			p += strspn(p, " \t");
			p[strcspn(p, " \t\n")] = '\0';
			snprintf(groups, sizeof(groups), "%s", p);
		}
	fclose(f);
	return groups;
}

static bool as_root(const char *test)
{
	if (geteuid() == 0)
		return true;
	fprintf(stderr, "%s: skipped, it needs root\n", test);
	return false;
}

/*
 * Started as root with user = "nobody": after binding, every uid and gid
 * (real, effective, saved, fs) is nobody's, its only group is nobody's
 * group, and the listeners bound as root still serve. The switch also made
 * it non-dumpable (/proc/PID/fd then belongs to root): no core file.
 */
START_TEST(test_drop_to_nobody)
{
	if (!as_root("privilege drop"))
		return;
	struct passwd *pw = getpwnam("nobody");
	ck_assert_msg(pw != NULL, "no user nobody");
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	unsigned v[4];
	char want[32];
	struct stat st;

	nt_daemon_start(&d, NULL, "user = \"nobody\";\n" LISTENERS);
	ck_assert(nt_daemon_log_contains(&d, "running as user nobody"));
	proc_ids(d.pid, "Uid:", v);
	for (int i = 0; i < 4; i++)
		ck_assert_msg(v[i] == uid, "uid #%d is %u, not %u", i, v[i],
		              (unsigned)uid);
	proc_ids(d.pid, "Gid:", v);
	for (int i = 0; i < 4; i++)
		ck_assert_msg(v[i] == gid, "gid #%d is %u, not %u", i, v[i],
		              (unsigned)gid);
	snprintf(want, sizeof(want), "%u", (unsigned)gid);
	ck_assert_str_eq(proc_groups(d.pid), want);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)d.pid);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg(st.st_uid == 0, "dumpable after the switch (owner %u)",
	              (unsigned)st.st_uid);
	serving();
	stop_ok();
}
END_TEST

/* core_dumps = true with a switch: dumpable again, as the user */
START_TEST(test_drop_with_core_dumps)
{
	if (!as_root("privilege drop with core dumps"))
		return;
	struct passwd *pw = getpwnam("nobody");
	ck_assert_ptr_nonnull(pw);
	uid_t uid = pw->pw_uid;
	struct stat st;
	char path[64];

	nt_daemon_start(&d, NULL,
	                "user = \"nobody\"; core_dumps = true;\n" LISTENERS);
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)d.pid);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg(st.st_uid == uid, "not dumpable (owner %u)",
	              (unsigned)st.st_uid);
	serving();
	stop_ok();
}
END_TEST

/* a user that does not exist: natterd refuses to start (exit 3) */
START_TEST(test_drop_to_nobody_unknown)
{
	if (!as_root("unknown user"))
		return;
	ck_assert_int_eq(
	    nt_daemon_spawn(&d, NULL,
	                    "user = \"no-such-user-natter\";\n" LISTENERS),
	    0);
	int code = nt_daemon_wait_exit(&d, NT_TEST_READY_MS);
	if (code != 3)
		nt_daemon_dump_log(&d);
	ck_assert_int_eq(code, 3);
	ck_assert(nt_daemon_log_contains(&d, "user \"no-such-user-natter\": "
	                                     "no such user"));
	ck_assert(!nt_daemon_log_contains(&d, " ready"));
}
END_TEST

static Suite *harden_suite(void)
{
	Suite *s = suite_create("harden");
	TCase *tc = tcase_create("process");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_core_off_by_default);
	tcase_add_test(tc, test_core_on_and_reload);
	tcase_add_test(tc, test_drop_to_nobody);
	tcase_add_test(tc, test_drop_with_core_dumps);
	tcase_add_test(tc, test_drop_to_nobody_unknown);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(harden_suite)
