/* json_suite.c - runs nst/JSONTestSuite's test_parsing files through our
 * parser: every y_ must parse, every n_ must be refused, i_ may go either
 * way but must not crash. One result per file.
 * Usage: json_suite SHARED_DIR/json-test-suite */
#include "common.h"
#include "eventbus/err.h"
#include "json/json.h"

int main(int argc, char **argv)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/test_parsing", argc > 1 ? argv[1] : "../shared/json-test-suite");
    char **names;
    int n = list_dir(dir, ".json", &names);
    if (n < 0) {
        printf("json-test-suite not found at %s: skipped (put ../shared beside the project)\n", dir);
        printf("0 passed, 0 failed, 1 skipped\n");
        return 0;
    }
    eb_json_doc *doc = eb_json_doc_new();
    eb_buf text = EB_BUF_INIT;
    int pass = 0, fail = 0, y = 0, nn = 0, ii = 0, i_acc = 0;
    for (int k = 0; k < n; k++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        if (read_file(path, &text) != 0) {
            printf("FAIL %s: unreadable\n", names[k]);
            fail++;
            continue;
        }
        int rc = eb_json_parse(doc, text.data, text.len, NULL, NULL);
        char cls = names[k][0];
        bool ok = cls == 'y' ? rc == 0 : cls == 'n' ? rc != 0 : true;
        y += cls == 'y';
        nn += cls == 'n';
        ii += cls == 'i';
        i_acc += cls == 'i' && rc == 0;
        if (ok) {
            pass++;
        } else {
            fail++;
            printf("FAIL %s: %s\n", names[k], rc ? "refused" : "accepted");
        }
        free(names[k]);
    }
    free(names);
    printf("JSONTestSuite: %d y_ (must accept), %d n_ (must refuse), %d i_ (%d accepted, "
           "%d refused, none crashed)\n", y, nn, ii, i_acc, ii - i_acc);
    printf("%d passed, %d failed, 0 skipped\n", pass, fail);
    eb_buf_free(&text);
    eb_json_doc_free(doc);
    return fail ? 1 : 0;
}
