#!/usr/bin/env python3
"""Independent reference for the pipeline's results, in another language and with another
decimal library than the pipeline's own code.

Reads trades as sent by the feed (NDJSON, one object per line: {"s","p","t","v","c","seq",
"ingest"} where "seq" is the order the feed sent them in and "ingest" an upper bound of when the
producer received them), applies the silver rules as the README states them, and prints JSON
(arguments: the file, then SILVER_MIN_EVENT_TIME in epoch ms, SILVER_MAX_FUTURE_MS, and optionally
SILVER_MIN_PRICE, SILVER_MAX_PRICE, SILVER_MAX_VOLUME, which default to no bound):

  {"valid": N, "invalid": N, "invalid_by_symbol": {...},
   "candles": {"1m": {"SYM": {"<window start ms>": {...}}}, "5m": {...}, "15m": {...},
               "1h": {...}, "4h": {...}, "1d": {...}}}

Every interval is folded directly from the trades, 15m and 4h included (the pipeline serves those
by adding up 5m and 1h rows), windows aligned to UTC (epoch ms // size * size; 1d = a UTC day).

A candle: open/close = price of the trade with the earliest/latest (t, seq); high; low;
volume = exact decimal sum of v over trades with v > 0; vwap = sum(p*v)/volume rounded half-even
to 10 places (null when volume is 0); count = number of trades (price-only included).
"""
import json
import math
import re
import sys
from decimal import Decimal, ROUND_HALF_EVEN, getcontext

SYMBOL = re.compile(r"^(?:[A-Z][A-Z0-9]{0,19}:)?[A-Z0-9][A-Z0-9._\-/]{0,31}$")
INTERVALS = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}


def valid(trade, min_event_time, max_future_ms, bounds):
    s, p, t, v = trade.get("s"), trade.get("p"), trade.get("t"), trade.get("v")
    min_price, max_price, max_volume = bounds
    if not isinstance(s, str) or not SYMBOL.fullmatch(s):
        return False
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p <= 0:
        return False
    if p < min_price or p > max_price:
        return False
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        return False
    if v > max_volume:
        return False
    if isinstance(t, bool) or not isinstance(t, int) or abs(t) > 2**53 - 1:
        return False
    if t < min_event_time or t > trade["ingest"] + max_future_ms:
        return False
    return True


def text(d):
    if d is None:
        return None
    d = d.normalize()
    out = format(d, "f")
    return "0" if out in ("-0", "0") else out


def main():
    # Sums and products stay exact: far more digits than any feed value carries.
    getcontext().prec = 200
    min_event_time = int(sys.argv[2])
    max_future_ms = int(sys.argv[3])
    # Bounds as the configuration's numbers: doubles, compared as doubles, as silver does.
    bounds = tuple(
        float(sys.argv[i]) if len(sys.argv) > i else default
        for i, default in ((4, 0.0), (5, math.inf), (6, math.inf))
    )
    trades = []
    with open(sys.argv[1]) as f:
        for line in f:
            if line.strip():
                trades.append(json.loads(line))
    result = {"valid": 0, "invalid": 0, "invalid_by_symbol": {}, "candles": {}}
    good = []
    for trade in trades:
        if valid(trade, min_event_time, max_future_ms, bounds):
            good.append(trade)
        else:
            result["invalid"] += 1
            key = str(trade.get("s"))
            result["invalid_by_symbol"][key] = result["invalid_by_symbol"].get(key, 0) + 1
    result["valid"] = len(good)
    for name, size in INTERVALS.items():
        groups = {}
        for trade in good:
            start = (trade["t"] // size) * size
            groups.setdefault((trade["s"], start), []).append(trade)
        out = {}
        for (symbol, start), members in groups.items():
            ordered = sorted(members, key=lambda x: (x["t"], x["seq"]))
            volume = Decimal(0)
            pv = Decimal(0)
            for x in members:
                if x["v"] > 0:  # v = 0 is a price-only update: no volume, no VWAP
                    v = Decimal(repr(float(x["v"])))
                    volume += v
                    pv += Decimal(repr(float(x["p"]))) * v
            vwap = None
            if volume != 0:
                # Division at ample precision, then half-even at 10 places.
                vwap = (pv / volume).quantize(Decimal("1e-10"), rounding=ROUND_HALF_EVEN)
            out.setdefault(symbol, {})[str(start)] = {
                "open": ordered[0]["p"],
                "close": ordered[-1]["p"],
                "high": max(x["p"] for x in members),
                "low": min(x["p"] for x in members),
                "volume": text(volume),
                "vwap": text(vwap),
                "count": len(members),
            }
        result["candles"][name] = out
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
