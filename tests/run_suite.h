/*
 * Every tests/check_<module>.c ends with NT_RUN_SUITE(<module>_suite): one
 * test program per suite, so `make -j check` runs them side by side and a
 * crash in one cannot hide the results of another.
 */
#ifndef NT_RUN_SUITE_H
#define NT_RUN_SUITE_H

#include <check.h>
#include <stdlib.h>

#define NT_RUN_SUITE(fn)                                                       \
	int main(void)                                                         \
	{                                                                      \
		SRunner *sr = srunner_create(fn());                            \
		srunner_run_all(sr, CK_ENV);                                   \
		int failed = srunner_ntests_failed(sr);                        \
		srunner_free(sr);                                              \
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;                   \
	}

#endif
