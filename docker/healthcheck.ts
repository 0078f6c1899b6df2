/**
 * Container health check for the Deno services of docker-compose.yml (the images have no curl):
 * `deno run --allow-net=127.0.0.1 docker/healthcheck.ts URL` exits 0 when `GET URL` answers 2xx
 * within the timeout (default 3000 ms, `--timeout-ms N`), and 1 otherwise with one line saying why.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** Why `url` is not healthy, or `null` when it answered 2xx within `timeoutMs`. */
export async function checkHealth(url: string, timeoutMs: number): Promise<string | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return response.ok ? null : `${url} answered HTTP ${response.status}`;
  } catch (error) {
    const reason = error instanceof DOMException && error.name === "TimeoutError"
      ? `no answer within ${timeoutMs} ms`
      : (error as Error).message;
    return `${url}: ${reason}`;
  }
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { "timeout-ms": { type: "string", default: "3000" } },
    allowPositionals: true,
  });
  const timeoutMs = Number(values["timeout-ms"]);
  if (positionals.length !== 1 || !Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
    console.error("Usage: deno run --allow-net docker/healthcheck.ts [--timeout-ms N] URL");
    Deno.exit(2);
  }
  const problem = await checkHealth(positionals[0]!, timeoutMs);
  if (problem) console.error(`unhealthy: ${problem}`);
  Deno.exit(problem ? 1 : 0);
}
