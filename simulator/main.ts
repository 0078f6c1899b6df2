/**
 * `deno task simulator`: a local Finnhub. Options come from flags (it is a test tool, not a
 * pipeline worker); `--help` lists them.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runTool, type ToolContext } from "../shared/main.ts";
import { type Fault, parseFaultFlag } from "./faults.ts";
import { parseReplay } from "./replay.ts";
import { type DuplicateConnectionPolicy, type SimulatorOptions, startSimulator } from "./server.ts";

const HELP = `Finnhub simulator: a local WebSocket server speaking Finnhub's trades protocol.

Usage: deno task simulator [options]
Then point the producer at it: FINNHUB_WS_URL=ws://127.0.0.1:8765 deno task producer

Options:
  --port N                 Port to listen on (0: any free port). Default 8765.
  --host H                 Address to bind. Default 127.0.0.1.
  --rate N                 Trades per second per connection (0: none). Default 100.
  --seed N                 Seed of the trade generator (same seed, same trades). Default 1.
  --max-trades N           Stop generating after N trades in all. Default: never.
  --max-trades-per-frame N Largest frame, in trades. Default 50.
  --symbols-limit N        Most symbols per connection; past it Finnhub's error
                           "Subscribing to too many symbols". Default 50.
  --ping-interval-ms N     Ping every connection this often. Default 60000.
  --token T                Accept only this token (repeatable); others get HTTP 401.
                           Default: any token.
  --duplicate-connections  drop-both | refuse | allow: a second connection for a token.
                           Default drop-both (as Finnhub).
  --replay FILE            Replay the NDJSON frames of FILE instead of generating trades.
  --replay-pace P          recorded | fast. Default recorded.
  --replay-max-gap-ms N    Cap on one recorded gap. Default 1000.
  --replay-loop            Start the replay over at the end.
  --ground-truth FILE      Write every trade sent to FILE (NDJSON, see ground_truth.ts).
  --fault F                A fault from the start (repeatable):
                             drop-every=MS       close each connection MS after it opened
                             silence=MS          send nothing for MS after start
                             malformed-every=MS  send a malformed frame every MS
                             hostile-every=MS    send a hostile frame every MS
                             duplicate[=N]       deliver the next N trade frames twice
                             refuse=401|429[:N]  refuse the next N handshakes
                             pause               start with generation paused
  --help                   This text.

Control routes on the same port:
  curl -X POST localhost:8765/control/fault -d '{"type":"drop"}'
  curl -X POST localhost:8765/control/fault -d '{"type":"silence","ms":5000}'
  curl -X POST localhost:8765/control/fault -d '{"type":"malformed","count":3}'
  curl -X POST localhost:8765/control/fault -d '{"type":"refuse","status":429,"count":2}'
  curl -X POST localhost:8765/control/rate -d '{"rate":50000}'
  curl localhost:8765/control/stats
`;

function numberFlag(name: string, text: string | undefined, fallback: number, min = 0): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min) {
    throw new RangeError(
      `--${name} must be a number of at least ${min}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

async function main(args: string[], { log, signal }: ToolContext): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        rate: { type: "string" },
        seed: { type: "string" },
        "max-trades": { type: "string" },
        "max-trades-per-frame": { type: "string" },
        "symbols-limit": { type: "string" },
        "ping-interval-ms": { type: "string" },
        token: { type: "string", multiple: true },
        "duplicate-connections": { type: "string" },
        replay: { type: "string" },
        "replay-pace": { type: "string" },
        "replay-max-gap-ms": { type: "string" },
        "replay-loop": { type: "boolean" },
        "ground-truth": { type: "string" },
        fault: { type: "string", multiple: true },
        help: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    console.error(`simulator: ${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  let options: SimulatorOptions;
  try {
    const policy = v["duplicate-connections"] ?? "drop-both";
    if (!["drop-both", "refuse", "allow"].includes(policy)) {
      throw new RangeError(
        `--duplicate-connections must be drop-both, refuse or allow, got ${policy}`,
      );
    }
    const pace = v["replay-pace"] ?? "recorded";
    if (pace !== "recorded" && pace !== "fast") {
      throw new RangeError(`--replay-pace must be recorded or fast, got ${pace}`);
    }
    const faults: Fault[] = (v.fault ?? []).map(parseFaultFlag);
    options = {
      port: numberFlag("port", v.port, 8765),
      hostname: v.host ?? "127.0.0.1",
      rate: numberFlag("rate", v.rate, 100),
      seed: numberFlag("seed", v.seed, 1),
      maxTradesPerFrame: numberFlag("max-trades-per-frame", v["max-trades-per-frame"], 50, 1),
      symbolLimit: numberFlag("symbols-limit", v["symbols-limit"], 50, 1),
      pingIntervalMs: numberFlag("ping-interval-ms", v["ping-interval-ms"], 60_000, 10),
      duplicateConnections: policy as DuplicateConnectionPolicy,
      faults,
      log,
      ...(v.token ? { tokens: v.token } : {}),
      ...(v["max-trades"] ? { maxTrades: numberFlag("max-trades", v["max-trades"], 0, 1) } : {}),
      ...(v["ground-truth"] ? { groundTruthPath: v["ground-truth"] } : {}),
      ...(v.replay
        ? {
          replay: {
            frames: parseReplay(await Deno.readTextFile(v.replay)),
            pace,
            maxGapMs: numberFlag("replay-max-gap-ms", v["replay-max-gap-ms"], 1_000),
            loop: v["replay-loop"] ?? false,
          },
        }
        : {}),
    };
  } catch (error) {
    console.error(`simulator: ${(error as Error).message}`);
    return 2;
  }
  const simulator = await startSimulator(options);
  log.info("listening", {
    url: simulator.url,
    control: simulator.controlUrl,
    rate: options.rate,
    seed: options.seed,
    replay: v.replay,
  });
  if (!signal.aborted) {
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  }
  await simulator.close();
  log.info("stopped", { ...simulator.stats(), connections: undefined });
  return 0;
}

if (import.meta.main) await runTool("simulator", (context) => main(Deno.args, context));
