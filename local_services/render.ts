/**
 * A server's config: the templates in `local_services/<name>/` with their `{{NAME}}` placeholders
 * filled in, written to `.local/<name>/conf/` at every start. Edit the templates, not the
 * rendered copies. An unknown placeholder is an error, so a typo never reaches a server.
 *
 * @module
 */

import { join } from "node:path";
import type { Server } from "./server_spec.ts";

/** Creates the server's folders and renders each of its templates into conf/. */
export async function renderConfig(server: Server): Promise<void> {
  const { spec, paths } = server;
  for (const dir of [paths.confDir, paths.logDir, paths.dataDir, paths.tmpDir]) {
    await Deno.mkdir(dir, { recursive: true });
  }
  for (const sub of spec.extraDirs) await Deno.mkdir(join(paths.dir, sub), { recursive: true });
  const vars = await spec.templateVars(paths, server.port);
  for (const template of spec.templates) {
    const source = join(paths.sourceDir, template);
    const rendered = renderTemplate(await Deno.readTextFile(source), vars, source);
    await Deno.writeTextFile(join(paths.confDir, template), rendered);
  }
}

/** `text` with each `{{NAME}}` replaced by `vars[NAME]`. @throws Error naming an unknown one. */
export function renderTemplate(
  text: string,
  vars: Readonly<Record<string, string>>,
  source: string,
): string {
  return text.replace(/\{\{([A-Z0-9_]+)\}\}/g, (_, key: string) => {
    const value = vars[key];
    if (value === undefined) throw new Error(`Unknown placeholder {{${key}}} in ${source}`);
    return value;
  });
}
