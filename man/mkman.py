#!/usr/bin/env python3
"""Writes a man page (roff, man macros) from a program's --help output and
the hand-written sections below, so the options in a page never drift from
the binary's own list.

Usage: man/mkman.py NAME SECTION VERSION PROGRAM OUTPUT

The --help text is read like this: `usage:` lines make the SYNOPSIS; a line
ending in ':' at the margin starts a subsection; an indented line whose text
is split by two or more spaces is an item (the left part in bold, the rest
its description, and a trailing EVENTBUS_* name its environment variable);
an indented line without such a split continues the item above; other lines
are paragraphs.
"""
import re
import subprocess
import sys

PAGES = {
    "eventbusd": {
        "summary": "the eventbus daemon: a durable event bus over HTTP",
        "description": [
            "eventbusd stores events published over its HTTP API in an append-only, "
            "crash-safe log under its data directory (or, with --store, in a PostgreSQL "
            "database) and delivers them to consumer groups. "
            "A 2xx answer to a publish, ack, nack or admin change means the change is on disk "
            "under the fsync policy (with --store: committed).",
            "Every option can also be set by the environment variable named beside it; a flag "
            "given on the command line wins over the variable.",
        ],
        "extra": [
            ("SIGNALS", [
                ("SIGTERM, SIGINT", "stop accepting connections, answer the requests in flight, "
                 "sync and close the logs, exit 0. A second signal exits at once."),
                ("SIGHUP", "reload: logs a line saying so and that the settings stay those read "
                 "at start (nothing is re-read yet; TLS certificates will be). Under systemd, "
                 "RELOADING=1 and READY=1 bracket it."),
            ]),
            ("SYSTEMD", [
                (None, "eventbusd sends READY=1 to $NOTIFY_SOCKET (sd_notify(3)) once its port "
                 "accepts connections, and STOPPING=1 when it begins to shut down, so it runs "
                 "as a Type=notify service. The packaged unit, eventbusd.service, keeps the data "
                 "in /var/lib/eventbus (StateDirectory=) under a dynamic user and reads "
                 "EVENTBUS_* settings from /etc/default/eventbusd."),
            ]),
            ("FILES", [
                ("DATA/LOCK", "held (flock) while a daemon uses DATA"),
                ("DATA/events, DATA/meta", "the event log and the bus's own state log; "
                 "inspect them offline with eventbus-log(1)"),
                ("--store database", "the tables eb_events (partitioned by seq range), eb_meta, "
                 "eb_state and eb_leader, created at the first start; several eventbusd nodes "
                 "may share it: one leads (a session advisory lock), the others forward to it "
                 "(docs/high-availability.md)"),
            ]),
            ("EXIT STATUS", [
                (None, "0 after a clean stop, 1 when the data cannot be opened or the address "
                 "cannot be listened on, 2 for a usage error."),
            ]),
        ],
        "see_also": "eventbus(1), eventbus-log(1), systemd.service(5), sd_notify(3)",
    },
    "eventbus": {
        "summary": "command-line client for eventbusd",
        "description": [
            "eventbus publishes events, tails them, and manages schemas, consumer groups, "
            "dead letters and replays of an eventbusd over its HTTP API.",
        ],
        "extra": [],
        "see_also": "eventbusd(8), eventbus-log(1)",
    },
    "eventbus-log": {
        "summary": "offline inspection of an eventbus log directory",
        "description": [
            "eventbus-log reads the segment and index files of one log directory of an "
            "eventbusd data directory and never writes to them, like mdb_dump or "
            "redis-check-aof.",
        ],
        "extra": [],
        "see_also": "eventbusd(8), eventbus(1)",
    },
}


def esc(text):
    """Escapes text for roff: backslashes, hyphens, a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def item(head, desc):
    env = re.search(r"\s*\b(EVENTBUS_[A-Z_]+(?:=\S+)?)$", desc)
    lines = [".TP", f".B {esc(head)}"]
    if env:
        desc = desc[:env.start()]
    lines.append(esc(desc.strip()))
    if env:
        lines += [".br", f"Environment: \\fB\\%{esc(env.group(1))}\\fR"]
    return lines


def render_help(text):
    synopsis, body, last_item = [], [], False
    for line in text.splitlines():
        if re.match(r"(?i)^\s*usage:\s*", line) or (synopsis and re.match(r"^\s{5,}\S", line)
                                                     and not body):
            synopsis.append(re.sub(r"(?i)^\s*usage:\s*", "", line).strip())
            continue
        if not line.strip():
            last_item = False
            continue
        if not line[0].isspace() and line.rstrip().endswith(":"):
            body.append(f".SS {esc(line.strip()[:-1])}")
            last_item = False
            continue
        parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        if line[0].isspace() and (len(parts) == 2 or parts[0].startswith("-")):
            body += item(parts[0], parts[1] if len(parts) == 2 else "")
            last_item = True
        elif line[0].isspace() and last_item:
            body.append(esc(line.strip()))
        else:
            body += [".PP", esc(line.strip())]
    return synopsis, body


def main(name, section, version, program, output):
    page = PAGES[name]
    proc = subprocess.run([program, "--help"], capture_output=True, text=True, check=True)
    synopsis, body = render_help(proc.stdout)
    title = esc(name.upper())
    out = [f'.TH {title} {section} "" "eventbus {version}" "eventbus manual"',
           ".SH NAME", f"{esc(name)} \\- {esc(page['summary'])}",
           ".SH SYNOPSIS"]
    for i, s in enumerate(synopsis):
        if i:
            out.append(".br")
        out.append(esc(s))
    out.append(".SH DESCRIPTION")
    for i, para in enumerate(page["description"]):
        if i:
            out.append(".PP")
        out.append(esc(para))
    out += [".SH OPTIONS"] + body
    for title, entries in page["extra"]:
        out.append(f".SH {title}")
        for head, desc in entries:
            out += item(head, desc) if head else [".PP", esc(desc)]
    out.append(".SH SEE ALSO")
    refs = page["see_also"].split(", ")
    for i, ref in enumerate(refs):
        ref_name, ref_sec = ref.rstrip(")").split("(")
        out.append(f".BR {esc(ref_name)} ({ref_sec}){',' if i + 1 < len(refs) else ''}")
    with open(output, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
