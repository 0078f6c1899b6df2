/**
 * How long a lone `producer/main.ts` takes from spawn to subscribed on the simulator, with
 * `PRODUCER_LEASE=none` and `kafka` (joining the lease group and initialising the transactional
 * ids), alternating, on fresh topics on the local Kafka:
 *
 *   deno run -A bench/producer_startup.ts [runs, default 5]
 *
 * Prints each time and the medians, ms.
 *
 * @module
 */
import { deleteTopics, producerTestConfig } from "../tests/producer_support.ts";
import { startSimulator } from "../simulator/server.ts";
import { childProcessEnv } from "../tests/helpers.ts";
const N = Number(Deno.args[0] ?? 5);
const out: Record<string, number[]> = { none: [], kafka: [] };
for (let i = 0; i < N; i++) {
  for (const mode of ["none", "kafka"]) {
    const sim = await startSimulator({ rate: 200 });
    const config = await producerTestConfig(sim.url, { FINNHUB_SYMBOLS: "AAPL,MSFT" });
    const started = Date.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../producer/main.ts", import.meta.url).pathname],
      clearEnv: true,
      env: {
        ...childProcessEnv(),
        FINNHUB_WS_URL: sim.url,
        FINNHUB_API_KEY: config.finnhub.apiKey.reveal(),
        FINNHUB_SYMBOLS: "AAPL,MSFT",
        KAFKA_TOPIC_RAW: config.kafka.topics.raw,
        KAFKA_TOPIC_DEAD_LETTER: config.kafka.topics.deadLetter,
        KAFKA_GROUP_PREFIX: config.kafka.groupPrefix,
        LOG_LEVEL: "warn",
        PRODUCER_LEASE: mode,
      },
      stdout: "null",
      stderr: "null",
    }).spawn();
    while (!(sim.stats().connections[0]?.subscriptions)) {
      await new Promise((r) => setTimeout(r, 10));
    }
    out[mode]!.push(Date.now() - started);
    child.kill("SIGTERM");
    await child.status;
    await sim.close();
    await deleteTopics(config);
  }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(
  JSON.stringify({
    none: out.none,
    kafka: out.kafka,
    medianNone: median(out.none!),
    medianKafka: median(out.kafka!),
  }),
);
