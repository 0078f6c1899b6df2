#!/bin/sh
# Starts the producer in docker compose: `sh docker/run_producer.sh SIMULATOR_URL`.
#
# Which feed it reads:
#   FINNHUB_WS_URL set                 -> that URL (with the key, if any)
#   FINNHUB_API_KEY set, no URL        -> Finnhub (the config's default URL)
#   neither                            -> SIMULATOR_URL, the compose `simulator` service
# so `docker compose up` with no key shows simulated trades, and a key in .env switches to Finnhub.
# Only FINNHUB_WS_URL may be set here; every other setting comes from the environment compose
# passes in, read by shared/config.ts as usual. The key is never printed.
set -eu

if [ "$#" -ne 1 ]; then
  echo "Usage: sh docker/run_producer.sh SIMULATOR_URL" >&2
  exit 2
fi

key=$(printf '%s' "${FINNHUB_API_KEY:-}" | tr -d '[:space:]')
url=$(printf '%s' "${FINNHUB_WS_URL:-}" | tr -d '[:space:]')
if [ -n "$url" ]; then
  echo "run_producer: reading FINNHUB_WS_URL" >&2
elif [ -n "$key" ]; then
  echo "run_producer: FINNHUB_API_KEY is set: reading Finnhub" >&2
else
  FINNHUB_WS_URL=$1
  export FINNHUB_WS_URL
  echo "run_producer: FINNHUB_API_KEY is empty: reading the simulator at $1" >&2
fi

# The heap bound every producer runs with (producer/heap_budget.ts PRODUCER_V8_FLAGS).
exec deno run --frozen --cached-only -A --v8-flags=--max-old-space-size=128,--max-semi-space-size=8 producer/main.ts
