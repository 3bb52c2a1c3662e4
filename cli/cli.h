/* cli.h - what the commands of the `eventbus` CLI share: the invocation
 * context, exit codes, output (tables or JSON), error reporting. The CLI
 * is a plain libeventbus program: it reads the library's typed results and
 * prints the server's answers (eb_client_answer) as they came; it does not
 * link the server's JSON code.
 *
 * Output mode: tables for people when stdout is a terminal, JSON (one value
 * per line) when it is not, so pipes and scripts get something parseable
 * without flags; --json / --table (or EVENTBUS_OUTPUT=json|table) force one.
 * Messages and errors always go to stderr. */
#ifndef EB_CLI_H
#define EB_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "eventbus.h"

enum {
    CLI_OK = 0,        /* done */
    CLI_REFUSED = 1,   /* the server said no (its message is printed) */
    CLI_USAGE = 2,     /* bad command line or unreadable input */
    CLI_UNREACHABLE = 3 /* no usable answer from the server */
};

typedef struct cli {
    eb_client  *c;
    const char *url;        /* --url / EVENTBUS_URL / default */
    const char *token;      /* --token (else EVENTBUS_TOKEN, read by the library) */
    const char *cafile;     /* --cacert (else EVENTBUS_CACERT, read by the library) */
    uint32_t    timeout_ms; /* --timeout */
    bool        json;       /* output JSON (else tables) */
    bool        output_set; /* --json or --table given */
    bool        tty;        /* stdout is a terminal */
    bool        err_tty;    /* stderr is a terminal (progress bars) */
    const char *cmd;        /* "groups create", for messages */
} cli;

/* Set by SIGINT/SIGTERM once cli_catch_signals() ran. */
extern volatile sig_atomic_t cli_stop;
void cli_catch_signals(void);

/* --- commands (argv[0] is the command's own name) ---------------------- */
int cli_publish(cli *x, int argc, char **argv);
int cli_tail(cli *x, int argc, char **argv);
int cli_schemas(cli *x, int argc, char **argv);
int cli_groups(cli *x, int argc, char **argv);
int cli_dlq(cli *x, int argc, char **argv);
int cli_replay(cli *x, int argc, char **argv);
int cli_stats(cli *x, int argc, char **argv);
int cli_top(cli *x, int argc, char **argv);
int cli_tokens(cli *x, int argc, char **argv);
int cli_events(cli *x, int argc, char **argv);
/* One event on a line: JSON (--json) or "#seq time type id key=K vN data". */
void cli_print_event(const cli *x, const eb_event *e);

/* --- errors ---------------------------------------------------------------- */
/* Prints "eventbus CMD: message" and a pointer to --help; returns CLI_USAGE. */
int cli_usage(const cli *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports the client's last error (message and details) on stderr and
 * returns the exit code it maps to (CLI_REFUSED or CLI_UNREACHABLE). */
int cli_fail(const cli *x, int rc);
/* The same for a batch: details' "index" i is reported as "line lines[i]". */
int cli_fail_lines(const cli *x, int rc, const uint64_t *lines, size_t nlines);
/* Reports a getopt failure (unknown option, missing value); CLI_USAGE. */
int cli_bad_option(const cli *x, int opt, char **argv);
/* Prints help text (to stdout) and returns CLI_OK. */
int cli_help(const char *text);
/* True if argv has -h/--help before any "--". */
bool cli_wants_help(int argc, char **argv);

/* --- parsing arguments ------------------------------------------------------ */
/* Parses a non-negative integer, or for cli_parse_ms a duration
 * (util/duration.h: "500ms", "30s", "1.5h", "7d"; bare: ms). Returns false
 * if malformed or out of range. */
bool cli_parse_u64(const char *s, uint64_t max, uint64_t *out);
bool cli_parse_ms(const char *s, uint64_t *ms);
/* Reads a whole file ("-": stdin); NULL with errno on failure. Caller frees. */
char *cli_read_file(const char *path, size_t *len);

/* --- output ------------------------------------------------------------------ */
/* A table: headers, then cells row by row; columns padded to their widest
 * cell (in characters), two spaces apart. */
typedef struct cli_table {
    size_t ncols;
    size_t ncells;
    size_t cap;
    char **cells; /* headers first; owned */
} cli_table;

void cli_table_init(cli_table *t, const char *const *headers, size_t ncols);
void cli_table_cell(cli_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_table_print(const cli_table *t, FILE *f);
void cli_table_free(cli_table *t);

/* The usual ending of a command that fetched a typed result: rc != 0
 * reports the error; in JSON mode the server's answer is printed as it
 * came (eb_client_answer), else show(result, arg). Frees the result (any
 * eb_result_free one). Returns the exit code. */
typedef void (*cli_show_fn)(const void *result, const void *arg);
int cli_answer(const cli *x, int rc, const void *result, cli_show_fn show, const void *arg);

/* Prints a JSON text followed by a newline (JSON mode). */
void cli_print_json(const char *json);
/* Writes JSON text re-indented, two spaces per level (schemas, configs). */
void cli_print_pretty(FILE *f, const char *json, size_t len);
/* "2026-11-23T06:25:37.149217Z" -> "2026-11-23 06:25:37.149" into out. */
const char *cli_short_time(const char *rfc3339, char out[32]);

/* --- values as text ----------------------------------------------------------- */
/* A double as the server writes it (shortest of %.15g / %.17g that reads
 * back the same), into out. */
const char *cli_num(double v, char out[40]);
/* "yes" / "no", as tables show booleans. */
const char *cli_yesno(bool v);
/* s, or "-" when NULL. */
const char *cli_or_dash(const char *s);
/* The strings (or numbers) of a list, comma-separated, into out. */
const char *cli_join(const char *const *s, size_t n, char *out, size_t cap);
const char *cli_join_u32(const uint32_t *v, size_t n, char *out, size_t cap);

#endif
