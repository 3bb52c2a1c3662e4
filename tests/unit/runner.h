/* runner.h - a small libuv-style unit-test runner.
 *
 * A test file declares its tests with TEST(name) { ... } and ends with
 * TEST_MAIN(T(name), T(other), ...). Each test runs in its own forked
 * process with a timeout (default 60 s, EB_TEST_TIMEOUT overrides) and a
 * fresh temporary directory, eb_test_tmpdir(), removed afterwards.
 * A failing CHECK prints file:line and the expression and ends the test.
 *
 * Usage: test_x            run all, print "N passed, N failed"
 *        test_x NAME       run only NAME (still forked)
 *        test_x -l         list the tests
 */
#ifndef EB_TEST_RUNNER_H
#define EB_TEST_RUNNER_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*eb_test_fn)(void);

typedef struct eb_test {
    const char *name;
    eb_test_fn  fn;
} eb_test;

int eb_test_main(int argc, char **argv, const eb_test *tests, size_t n);
/* A directory private to the running test; removed when it ends. */
const char *eb_test_tmpdir(void);
/* Marks the running test as skipped (with a reason) and ends it. */
void eb_test_skip(const char *why) __attribute__((noreturn));
void eb_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

#define TEST(name) static void test_##name(void)
#define T(name) {#name, test_##name}
#define TEST_MAIN(...)                                                   \
    int main(int argc, char **argv)                                      \
    {                                                                    \
        static const eb_test tests_[] = {__VA_ARGS__};                   \
        return eb_test_main(argc, argv, tests_,                          \
                            sizeof tests_ / sizeof tests_[0]);           \
    }

#define CHECK(c)                                                         \
    do {                                                                 \
        if (!(c))                                                        \
            eb_test_fail(__FILE__, __LINE__, "CHECK(%s)", #c);           \
    } while (0)

#define CHECK_INT(a, op, b)                                              \
    do {                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);              \
        if (!(a_ op b_))                                                 \
            eb_test_fail(__FILE__, __LINE__, "%s %s %s (%lld vs %lld)",  \
                         #a, #op, #b, a_, b_);                           \
    } while (0)

#define CHECK_EQ(a, b) CHECK_INT(a, ==, b)

#define CHECK_STR(a, b)                                                  \
    do {                                                                 \
        const char *a_ = (a), *b_ = (b);                                 \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                           \
            eb_test_fail(__FILE__, __LINE__, "%s == %s (\"%s\" vs \"%s\")", \
                         #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
    } while (0)

/* 0 == success; prints eb_strerror() of the code otherwise. */
#define CHECK_OK(expr)                                                   \
    do {                                                                 \
        int rc_ = (expr);                                                \
        if (rc_ != 0)                                                    \
            eb_test_fail(__FILE__, __LINE__, "%s returned %d (%s)",      \
                         #expr, rc_, eb_strerror(rc_));                  \
    } while (0)

#endif
