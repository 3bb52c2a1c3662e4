#!/usr/bin/env bash
# analytics.sh - the analytics consumer of the shop example, in plain shell:
# curl for HTTP, jq for JSON. Any language that speaks HTTP can consume:
# pull a batch (long poll), handle each event, ack the batch.
# Usage: analytics.sh [URL]   (default $EVENTBUS_URL, else http://127.0.0.1:8470)
# Runs until a pull comes back empty (2 s without events).
set -euo pipefail
URL=${1:-${EVENTBUS_URL:-http://127.0.0.1:8470}}
GROUP=$URL/v1/groups/analytics
total=0
while :; do
    batch=$(curl -sS --fail-with-body -X POST "$GROUP/pull" \
        -H 'Content-Type: application/json' \
        -d '{"consumer": "analytics-sh", "max": 100, "wait_ms": 2000}')
    n=$(jq '.events | length' <<<"$batch")
    [ "$n" -eq 0 ] && break
    # "handle" each event: one line per order for the report
    jq -r '.events[] | "analytics: order \(.data.orderId) \(.data.amount) \(.data.currency) (seq \(.seq))"' <<<"$batch"
    ids=$(jq -c '{ids: [.events[].delivery.id]}' <<<"$batch")
    curl -sS --fail-with-body -X POST "$GROUP/ack" -H 'Content-Type: application/json' \
        -d "$ids" >/dev/null
    total=$((total + n))
done
[ "$total" -eq 1 ] && s="" || s=s
echo "analytics: caught up; handled $total event$s"
