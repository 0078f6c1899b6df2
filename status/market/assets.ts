/**
 * The market page's static files: `page/` beside this module, and lightweight-charts' standalone
 * production bundle (an ES module with no imports of its own) from the installed npm package, so
 * the page needs no internet and no build step.
 *
 * Finding the bundle: `import.meta.resolve("lightweight-charts")` goes through deno.json's import
 * map and deno.lock to the package's entry module as a `file:` URL, wherever Deno keeps npm
 * packages (the global cache, `DENO_DIR` in the container, or a `node_modules/` directory); the
 * standalone bundle sits in the same `dist/` folder. Deno installs every package of deno.lock
 * before running, so the file is there whenever the status endpoint runs (the Docker image
 * installs them with `deno install --frozen`).
 *
 * @module
 */

/** One file as served. */
export interface Asset {
  readonly body: Uint8Array;
  readonly contentType: string;
  readonly cacheControl: string;
  /** Further response headers (the page's Content-Security-Policy). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The body gzipped once at load, for clients that accept it (the chart library). */
  readonly gzip?: Uint8Array;
}

async function gzip(body: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([body as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * The page's Content-Security-Policy: its own files and connections only, plus the one inline
 * script it has, its import map, allowed by the hash of its text.
 */
export async function pageCsp(html: string): Promise<string> {
  const map = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html);
  let hash = "";
  if (map) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(map[1]!));
    hash = ` 'sha256-${btoa(String.fromCharCode(...new Uint8Array(digest)))}'`;
  }
  return `default-src 'none'; script-src 'self'${hash}; style-src 'self' 'unsafe-inline'; ` +
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; " +
    "frame-ancestors 'none'";
}

const STANDALONE = "lightweight-charts.standalone.production.mjs";

/** The `file:` URL of lightweight-charts' standalone production bundle. */
export function chartBundleUrl(resolve: (specifier: string) => string = import.meta.resolve): URL {
  const entry = resolve("lightweight-charts");
  if (!entry.startsWith("file:")) {
    throw new Error(
      `lightweight-charts resolves to ${entry}, not a local file: run \`deno install\` so the npm package is on disk`,
    );
  }
  return new URL(STANDALONE, entry);
}

const PAGE_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/assets/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/assets/view.js": { file: "view.js", type: "text/javascript; charset=utf-8" },
  "/assets/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
};

/** The route of the chart bundle. */
export const CHART_BUNDLE_ROUTE = "/assets/lightweight-charts.mjs";

/** Every asset's route. */
export const ASSET_ROUTES: readonly string[] = [...Object.keys(PAGE_FILES), CHART_BUNDLE_ROUTE];

/**
 * Loads the assets on first use and keeps them in memory (about 200 kB). Throws an error naming
 * the missing file when one is not there.
 */
export function createAssets(): { get(route: string): Promise<Asset | undefined> } {
  let loaded: Promise<Map<string, Asset>> | undefined;
  async function load(): Promise<Map<string, Asset>> {
    const out = new Map<string, Asset>();
    for (const [route, { file, type }] of Object.entries(PAGE_FILES)) {
      const url = new URL(`./page/${file}`, import.meta.url);
      const body = await Deno.readFile(url);
      const headers = route === "/"
        ? { "Content-Security-Policy": await pageCsp(new TextDecoder().decode(body)) }
        : undefined;
      out.set(route, {
        body,
        contentType: type,
        cacheControl: "no-cache",
        ...(headers ? { headers } : {}),
      });
    }
    const bundle = chartBundleUrl();
    let body: Uint8Array;
    try {
      body = await Deno.readFile(bundle);
    } catch (error) {
      throw new Error(
        `Cannot read the chart library at ${bundle.pathname}: run \`deno install\` (deno.json pins lightweight-charts)`,
        { cause: error },
      );
    }
    out.set(CHART_BUNDLE_ROUTE, {
      body,
      gzip: await gzip(body),
      contentType: "text/javascript; charset=utf-8",
      cacheControl: "public, max-age=3600",
    });
    return out;
  }
  return {
    async get(route) {
      loaded ??= load();
      loaded.catch(() => (loaded = undefined));
      return (await loaded).get(route);
    },
  };
}
