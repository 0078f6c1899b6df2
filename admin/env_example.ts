/**
 * Regenerates `.env.example` from `CONFIG_VARIABLES`, keeping its "docker compose only" tail:
 * `deno run -A admin/env_example.ts`. `shared/config_test.ts` fails when the two disagree.
 *
 * @module
 */
import { CONFIG_VARIABLES } from "../shared/config.ts";

const TAIL_MARK = "# docker compose only";

/** The generated part of `.env.example`. */
export function renderEnvExample(): string {
  const lines = [
    "# Every variable the pipeline reads, with its default. Copy to .env and edit;",
    "# `deno task ...` loads .env with Deno's built-in --env-file. Unset or empty means the default.",
    "# Secrets (marked) are never logged, and .env is git-ignored.",
    "",
  ];
  for (const v of CONFIG_VARIABLES) {
    lines.push(`# ${v.description}${v.secret ? " (secret)" : ""}`);
    lines.push(v.secret ? `${v.name}=` : `# ${v.name}=${v.default}`);
    lines.push("");
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const url = new URL("../.env.example", import.meta.url);
  const old = await Deno.readTextFile(url).catch(() => "");
  const at = old.indexOf(TAIL_MARK);
  await Deno.writeTextFile(url, renderEnvExample() + (at >= 0 ? "\n" + old.slice(at) : ""));
}
