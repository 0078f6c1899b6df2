/**
 * The headless Chromium of the browser tests: Debian's `/usr/bin/chromium` (`apt-get install
 * chromium`; .ci/run installs it) driven by npm `playwright-core`, each run on a fresh profile
 * that is removed when it closes. Without the binary the tests are ignored, saying so.
 *
 * @module
 */
import { type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Whether the Chromium binary is missing (a test then sets `ignore`). */
export function chromiumMissing(): boolean {
  try {
    return !Deno.statSync(CHROMIUM).isFile;
  } catch {
    return true;
  }
}

/** A running browser: its one context; `close()` closes it and removes its profile. */
export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Starts Chromium headless on a fresh profile directory named `<prefix>...`, with what reaches
 * out on its own (updates, sync, background networking, QUIC) turned off.
 */
export async function launchChromium(
  prefix: string,
  options: { readonly viewport?: { readonly width: number; readonly height: number } } = {},
): Promise<Browser> {
  const userDataDir = await Deno.makeTempDir({ prefix });
  const removeProfile = () => Deno.remove(userDataDir, { recursive: true }).catch(() => {});
  try {
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      ...(options.viewport ? { viewport: options.viewport } : {}),
    });
    return {
      context,
      async close() {
        await context.close().catch(() => {});
        await removeProfile();
      },
    };
  } catch (error) {
    await removeProfile();
    throw error;
  }
}
