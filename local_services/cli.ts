/**
 * Command line for the local Kafka, Cassandra and schema registry servers.
 *
 *   deno run -A local_services/cli.ts up [kafka|cassandra|registry]     start (all by default)
 *   deno run -A local_services/cli.ts down [kafka|cassandra|registry]   stop (all by default)
 *   deno run -A local_services/cli.ts status      running / reachable / version / data dir
 *   deno run -A local_services/cli.ts logs <kafka|cassandra|registry> [--lines N]
 *   deno run -A local_services/cli.ts smoke     produce+consume one message, TTL round trip
 *   deno run -A local_services/cli.ts nodetool [args]   Cassandra's nodetool (default: status)
 *
 * With `--cluster N` (anywhere on the line), up / down / status / logs / nodetool act on the
 * local N-node cluster of cluster.ts instead (up/down also take a node: `down cassandra-2`,
 * `down kafka-1 --kill` for a kill -9; nodetool takes `--node n`, default 1).
 *
 * Exits 0 on success, 1 with the error message on failure, 2 on bad usage.
 *
 * @module
 */

import { hideKafkajsTimeoutWarning } from "../shared/kafka.ts";
import { smokeCheck } from "./smoke_check.ts";
import {
  clusterDown,
  clusterNode,
  clusterStatus,
  clusterUp,
  jmxPort,
  startNode,
  stopNode,
} from "./cluster.ts";
import {
  SERVICE_NAMES,
  serviceLogTail,
  type ServiceName,
  servicesDown,
  servicesStatus,
  servicesUp,
  startService,
  stopService,
} from "./services.ts";

const NAMES = SERVICE_NAMES.join("|");
const USAGE = `usage: deno run -A local_services/cli.ts <command>
  up [${NAMES}]        start the local servers (all by default) and wait until ready
  down [${NAMES}]      stop them (all by default)
  status                      show running / reachable / version / data dir
  logs <${NAMES}> [--lines N]   print the last lines of a server's logs
  smoke                       produce+consume one message, write+read a TTL'd row
  nodetool [args]             Cassandra's nodetool against the local server (default: status)
--cluster N (with up, down, status, logs, nodetool): the local N-node cluster instead
  up [<node>] --cluster N             start every node (or one: cassandra-2, kafka-1)
  down [<node>] [--kill] --cluster N  stop every node (or one; --kill: kill -9)
  status --cluster N                  every node: up/down, address, pid
  logs <node> --cluster N [--lines N] a node's log
  nodetool [--node n] [args] --cluster N   nodetool against Cassandra node n (default 1)`;

/** Runs one CLI command; returns the process exit code. */
export async function main(args: string[], signal?: AbortSignal): Promise<number> {
  const log = (line: string) => console.log(line);
  const options = signal ? { log, signal } : { log };
  const at = args.indexOf("--cluster");
  if (at >= 0) {
    const size = Number(args[at + 1]);
    if (!/^\d+$/.test(args[at + 1] ?? "")) return usage();
    return await clusterMain(size, [...args.slice(0, at), ...args.slice(at + 2)], options);
  }
  const [command, ...rest] = args;
  switch (command) {
    case "up":
    case "down": {
      const name = rest[0];
      if (rest.length > 1 || (name !== undefined && !isServiceName(name))) return usage();
      if (command === "up") {
        await (name ? startService(name, options) : servicesUp(options));
      } else {
        await (name ? stopService(name, options) : servicesDown(options));
      }
      return 0;
    }
    case "status": {
      if (rest.length > 0) return usage();
      const status = await servicesStatus(options);
      return Object.values(status).every((s) => s.reachable) ? 0 : 3;
    }
    case "logs": {
      const [name, flag, count] = rest;
      if (name === undefined || !isServiceName(name)) return usage();
      let lines = 50;
      if (flag !== undefined) {
        if (flag !== "--lines" || count === undefined || !/^\d+$/.test(count)) return usage();
        lines = Number(count);
      }
      const tails = await serviceLogTail(name, lines);
      if (tails.length === 0) console.log(`${name}: no logs yet`);
      for (const { file, lines: text } of tails) {
        console.log(`==> ${file} <==`);
        for (const line of text) console.log(line);
      }
      return 0;
    }
    case "smoke": {
      if (rest.length > 0) return usage();
      await smokeCheck({ log });
      return 0;
    }
    case "nodetool":
      return await nodetool(rest.length > 0 ? rest : ["status"]);
    default:
      return usage();
  }
}

/** The `--cluster N` commands. */
async function clusterMain(
  size: number,
  args: string[],
  options: { log: (line: string) => void; signal?: AbortSignal },
): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case "up":
    case "down": {
      const kill = rest.includes("--kill");
      const names = rest.filter((a) => a !== "--kill");
      if (names.length > 1 || (kill && command === "up")) return usage();
      const name = names[0];
      if (name !== undefined) clusterNode(size, name);
      if (command === "up") {
        await (name ? startNode(size, name, options) : clusterUp(size, options));
      } else await (name ? stopNode(size, name, { ...options, kill }) : clusterDown(size, options));
      return 0;
    }
    case "status": {
      if (rest.length > 0) return usage();
      const statuses = await clusterStatus(size, options);
      return statuses.every((s) => s.reachable) ? 0 : 3;
    }
    case "logs": {
      const [name, flag, count] = rest;
      if (name === undefined) return usage();
      const node = clusterNode(size, name);
      const lines = flag === "--lines" && /^\d+$/.test(count ?? "") ? Number(count) : 50;
      const text = await Deno.readTextFile(node.paths.mainLog).catch(() => "");
      console.log(`==> ${node.paths.mainLog} <==`);
      console.log(text.trimEnd().split("\n").slice(-lines).join("\n"));
      return 0;
    }
    case "nodetool": {
      let index = 1;
      const at = rest.indexOf("--node");
      if (at >= 0) {
        index = Number(rest[at + 1]);
        rest.splice(at, 2);
      }
      const node = clusterNode(size, `cassandra-${index}`);
      return await nodetool(rest.length > 0 ? rest : ["status"], {
        confDir: node.paths.confDir,
        port: jmxPort(index),
      });
    }
    default:
      return usage();
  }
}

/**
 * Runs Cassandra's nodetool from the fetched jars over JMX on 127.0.0.1:7199, with the module
 * flags Java 17 needs (taken from the server's own options file) and quiet logging.
 */
async function nodetool(
  args: string[],
  target: { confDir?: string; port: number } = { port: 7199 },
): Promise<number> {
  const here = new URL(".", import.meta.url);
  const local = new URL("../.local/cassandra/", import.meta.url);
  const optionsFile = target.confDir
    ? `${target.confDir}/jvm17_server.options`
    : new URL("conf/jvm17_server.options", local);
  const options = await Deno.readTextFile(optionsFile).catch(() => {
    throw new Error(
      "Cassandra has not been set up in this checkout (no .local/cassandra/conf): " +
        "run `deno task services:up` first",
    );
  });
  const moduleFlags = options.split("\n").map((l) => l.trim()).filter((l) =>
    /^--add-(exports|opens) /.test(l)
  ).flatMap((l) => l.split(/\s+/));
  const { code } = await new Deno.Command("java", {
    args: [
      `-Dlogback.configurationFile=${new URL("cassandra/logback-tools.xml", here).pathname}`,
      ...moduleFlags,
      "-cp",
      `${new URL("lib/", local).pathname}*`,
      "org.apache.cassandra.tools.NodeTool",
      "-h",
      "127.0.0.1",
      "-p",
      String(target.port),
      ...args,
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return code;
}

function isServiceName(value: string): value is ServiceName {
  return (SERVICE_NAMES as readonly string[]).includes(value);
}

function usage(): number {
  console.error(USAGE);
  return 2;
}

if (import.meta.main) {
  hideKafkajsTimeoutWarning();
  const controller = new AbortController();
  const onSignal = () => {
    console.error("interrupted: servers already started keep running in the background");
    controller.abort(new Error("interrupted"));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  let code: number;
  try {
    code = await main(Deno.args, controller.signal);
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    code = controller.signal.aborted ? 130 : 1;
  }
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.exit(code);
}
