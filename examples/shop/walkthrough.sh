#!/usr/bin/env bash
# walkthrough.sh - the shop story, end to end, against a running eventbusd.
#
#   make && make run                       # in one terminal
#   examples/shop/walkthrough.sh [URL]     # in another (default $EVENTBUS_URL,
#                                          # else http://127.0.0.1:8470)
#
# An order service publishes order.created; inventory, notification and
# analytics consume it through their own consumer groups. The script prints
# each command it runs ("$ ...") and what it answered. It (re)creates the
# groups inventory, notification and analytics on the server it talks to.
# Needs: bin/eventbus and build/examples/shop/* (make), curl and jq.
# Overrides: $EVENTBUS (the CLI), $SHOP_BIN (the directory of the C services).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
URL=${1:-${EVENTBUS_URL:-http://127.0.0.1:8470}}
EB=${EVENTBUS:-$ROOT/bin/eventbus}
BIN=${SHOP_BIN:-$ROOT/build/examples/shop}
export EVENTBUS_URL=$URL EVENTBUS_OUTPUT=table

for f in "$EB" "$BIN/order-service" "$BIN/inventory" "$BIN/notification"; do
    [ -x "$f" ] || { echo "walkthrough: $f is missing; build first (make)" >&2; exit 2; }
done
for t in curl jq; do
    command -v $t >/dev/null || { echo "walkthrough: needs $t (scripts/deps.sh)" >&2; exit 2; }
done

step() { printf '\n== %s\n' "$*"; }
show() { printf '$'; printf ' %q' "$@"; printf '\n'; }
eb() { show eventbus "$@"; "$EB" "$@"; }
svc() { local name=$1; shift; show "$name" "$@"; "$BIN/$name" "$@"; }
pause_a_moment() { sleep 0.3; }

if ! "$EB" stats >/dev/null 2>&1; then
    echo "walkthrough: no eventbusd answers at $URL; start one with 'make run'" >&2
    exit 3
fi
echo "eventbus shop walkthrough against $URL"
for g in inventory notification analytics; do # a fresh start for the demo's groups
    "$EB" groups delete "$g" >/dev/null 2>&1 || true
done

step "1. The contract: order.created needs orderId, amount and currency"
if ! eb schemas register order.created "$HERE/order.created.json"; then
    cat >&2 <<EOF
walkthrough: this server already holds an order.created schema that the
shop's ($HERE/order.created.json) cannot follow (the reasons are above;
'eventbus schemas show order.created' prints it). The walkthrough needs a
server whose order.created is the shop's or unknown: start an eventbusd on
a fresh data directory (stop 'make run', then 'rm -rf data' and 'make run'
again, which deletes its events; or 'bin/eventbusd --data /tmp/shop-data
--listen 127.0.0.1:8471' and give walkthrough.sh http://127.0.0.1:8471).
EOF
    exit 1
fi

step "2. Inventory and notification subscribe (each group gets every order)"
eb groups create inventory --types order.created
eb groups create notification --types order.created --max-attempts 4 \
    --backoff-initial 200ms --backoff-max 1s --jitter 0

step "3. Inventory is down; the order service publishes anyway"
svc order-service A-1001 129.95 EUR alice@example.com
svc order-service A-1002 5.00 EUR bob@
svc order-service A-1003 42.00 EUR carol@example.com
eb groups list

step "4. Inventory comes back and catches up: nothing was lost"
svc inventory --idle 1000
eb groups list

step "5. Analytics joins later, without touching the order service"
eb groups create analytics --types order.created
svc order-service A-1004 19.99 USD dave@example.com
show analytics.sh
"$HERE/analytics.sh" "$URL"

step "6. A buggy producer forgets the currency: refused at the door"
svc order-service A-1005 10.00 "" erin@example.com 2>&1 ||
    echo "(exit status $?: nothing was written; the consumers never see it)"

step "7. Notification chokes on bob@: 3 retries with backoff, then the DLQ"
echo '$ notification &'
"$BIN/notification" &
notif=$!
for _ in $(seq 1 150); do # up to 30 s
    dl=$("$EB" --json groups show notification | jq .dead_letters)
    [ "$dl" -ge 1 ] && break
    sleep 0.2
done
pause_a_moment
echo '$ kill -TERM %notification      # Ctrl-C works the same: a clean stop'
kill -TERM "$notif"
wait "$notif"
eb dlq list notification

step "8. Fix the handler, redrive the dead letter"
eb dlq redrive notification
svc notification --fixed --idle 1000
eb dlq list notification

step "9. Replay the last 2 hours for analytics (say its report had a bug)"
eb replay analytics --since 2h
show analytics.sh
"$HERE/analytics.sh" "$URL"

step "10. Where things stand"
eb stats
echo
echo "walkthrough complete"
