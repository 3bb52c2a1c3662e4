/* auth_fuzz.c - fuzz target for the Authorization header parser and the
 * scope grammar of src/api/auth.c.
 *
 * Input: one mode byte, then the text (copied into a buffer of exactly its
 * size, so ASan sees any read past n). Mode even: the header value;
 * properties checked, abort() on a breach:
 *   - eb__api_bearer accepts exactly what an independent matcher accepts
 *     (spaces/tabs, "bearer" in any case, at least one space or tab, 1 to
 *     EB_API_SECRET_MAX token68 characters, spaces/tabs, the end), and the
 *     secret it returns is that run of characters, inside the input;
 * Mode odd: a scope; properties:
 *   - eb__api_scope_valid agrees with an independent reading of the
 *     grammar (the fixed names, or publish:/consume: and a pattern of
 *     token68 characters with at most one '*', last, alone or after '.');
 *   - a token carrying a valid publish:/consume: scope is granted that
 *     kind of scope for a subject equal to the pattern without its '*'
 *     (plus one more segment), and any kind for a NULL subject.
 * Never crash, leak or hang is checked by the sanitizers and libFuzzer. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "fuzz.h"

static bool t68(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~+/=", c) != NULL);
}

static bool ws(char c) { return c == ' ' || c == '\t'; }

static void bearer(const char *s, size_t n)
{
    eb_str sec = {NULL, 0};
    int rc = eb__api_bearer(s, n, &sec);
    size_t i = 0;
    while (i < n && ws(s[i]))
        i++;
    bool ok = n - i >= 7 && strncasecmp(s + i, "bearer", 6) == 0 && ws(s[i + 6]);
    size_t a = 0, b = 0;
    if (ok) {
        i += 6;
        while (i < n && ws(s[i]))
            i++;
        a = i;
        while (i < n && s[i] && t68((unsigned char)s[i]))
            i++;
        b = i;
        while (i < n && ws(s[i]))
            i++;
        ok = b > a && b - a <= EB_API_SECRET_MAX && i == n;
    }
    FUZZ_CHECK((rc == 0) == ok);
    if (ok)
        FUZZ_CHECK(sec.ptr == s + a && sec.len == b - a);
}

static bool pattern(const char *p, size_t n)
{
    if (!n || n > 128)
        return false;
    const char *star = memchr(p, '*', n);
    for (size_t i = 0; i < n; i++)
        if (p[i] != '*' && !t68((unsigned char)p[i]))
            return false;
    if (!star)
        return true;
    return star == p + n - 1 && (n == 1 || p[n - 2] == '.');
}

static void scope(const char *s, size_t n)
{
    static const char *const fixed[] = {"read", "schemas:write", "groups:write", "metrics",
                                        "admin"};
    bool want = false;
    for (size_t i = 0; i < 5; i++)
        want |= n == strlen(fixed[i]) && !memcmp(s, fixed[i], n);
    bool pub = n > 8 && !memcmp(s, "publish:", 8), con = n > 8 && !memcmp(s, "consume:", 8);
    if (pub || con)
        want = pattern(s + 8, n - 8);
    FUZZ_CHECK(eb__api_scope_valid(s, n) == want);
    if (!want || !(pub || con) || memchr(s, '\0', n))
        return;
    char *sc = strndup(s, n); /* a token's scopes are NUL-terminated */
    if (!sc)
        return;
    eb_token t = {.scopes = &sc, .nscopes = 1};
    eb_scope kind = pub ? EB_SCOPE_PUBLISH : EB_SCOPE_CONSUME;
    FUZZ_CHECK(eb__api_token_has(&t, kind, (eb_str){NULL, 0}));
    FUZZ_CHECK(!eb__api_token_has(&t, pub ? EB_SCOPE_CONSUME : EB_SCOPE_PUBLISH,
                                  (eb_str){NULL, 0}));
    size_t pl = n - 8;
    char subj[140];
    memcpy(subj, s + 8, pl);
    if (subj[pl - 1] == '*') { /* "a.*" matches "a.x"; "*" matches "x" */
        subj[pl - 1] = 'x';
    }
    FUZZ_CHECK(eb__api_token_has(&t, kind, (eb_str){subj, pl}));
    free(sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *s = malloc(size - 1 ? size - 1 : 1);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    if (data[0] & 1)
        scope(s, size - 1);
    else
        bearer(s, size - 1);
    free(s);
    return 0;
}
