/* The unit tests' few assertions. A failed check prints where and what, and
 * the test program exits 1 at the end (ctest reports it). */
#ifndef MF_TEST_CHECK_H
#define MF_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);   \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

#define CHECK_INT(a, b)                                                                            \
	do {                                                                                       \
		long long a_ = (long long)(a), b_ = (long long)(b);                                \
		if (a_ != b_) {                                                                    \
			fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__,      \
				__LINE__, #a, a_, #b, b_);                                         \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                           \
			fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__,        \
				__LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");             \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

/* Runs one test function and names it on failure. */
#define RUN(fn)                                                                                    \
	do {                                                                                       \
		int before_ = check_failures;                                                      \
		fn();                                                                              \
		if (check_failures != before_)                                                     \
			fprintf(stderr, "FAILED: %s\n", #fn);                                      \
	} while (0)

#define CHECK_DONE()                                                                               \
	do {                                                                                       \
		if (check_failures)                                                                \
			fprintf(stderr, "%d check(s) failed\n", check_failures);                   \
		return check_failures ? 1 : 0;                                                     \
	} while (0)

#endif
