/**
 * Where `deno task start` writes: its own lines (`start: ...`, secrets redacted; stdout, problems
 * on stderr) and, on a terminal, the live view in the alternate screen. A closed terminal
 * (SIGHUP) must not break the ordered stop, so every write error is dropped.
 *
 * @module
 */
import { redact, type Secret } from "../shared/secret.ts";

/** Start's own lines. */
export interface Output {
  /** Whether stdout is a terminal and the live view is wanted. */
  readonly tty: boolean;
  /** A line of our own (stdout). */
  say(line: string): void;
  /** A problem (stderr). */
  warn(line: string): void;
}

/** An {@linkcode Output} that prefixes `start: ` and redacts `secrets`. */
export function createOutput(tty: boolean, secrets: readonly Secret[]): Output {
  const write = (stream: typeof Deno.stdout, line: string) =>
    safeWrite(stream, redact(`start: ${line}`, secrets) + "\n");
  return {
    tty,
    say: (line) => write(Deno.stdout, line),
    warn: (line) => write(Deno.stderr, line),
  };
}

/** The live view's screen: the terminal's alternate screen while it is shown. */
export interface Screen {
  /** Whether the view is on screen now. */
  readonly active: boolean;
  /** Switches to the view (on a terminal only). */
  enter(): void;
  /** Back to the normal screen. */
  leave(): void;
  /** Redraws the view with `lines`. */
  draw(lines: readonly string[]): void;
}

/** The screen of `out`. */
export function createScreen(out: Output): Screen {
  let active = false;
  return {
    get active() {
      return active;
    },
    enter() {
      if (!out.tty || active) return;
      active = true;
      safeWrite(Deno.stdout, "\x1b[?1049h\x1b[?25l");
    },
    leave() {
      if (!active) return;
      active = false;
      safeWrite(Deno.stdout, "\x1b[?25h\x1b[?1049l");
    },
    draw(lines) {
      safeWrite(Deno.stdout, `\x1b[H${lines.map((l) => `${l}\x1b[K`).join("\n")}\n\x1b[J`);
    },
  };
}

/** The terminal's size, or 100 x 40 when it has none. */
export function consoleSize(): { columns: number; rows: number } {
  try {
    const { columns, rows } = Deno.consoleSize();
    return { columns: columns >= 20 ? columns : 100, rows: rows >= 10 ? rows : 40 };
  } catch {
    return { columns: 100, rows: 40 };
  }
}

const encoder = new TextEncoder();

/** Writes to a terminal or pipe that may be gone (closed terminal): errors are dropped. */
export function safeWrite(stream: { writeSync(bytes: Uint8Array): number }, text: string): void {
  try {
    let bytes = encoder.encode(text);
    while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
  } catch {
    // Nowhere to write to.
  }
}

/** Lines indented for an error report; `(no output)` for none. */
export function indent(lines: readonly string[]): string {
  return lines.length === 0 ? "    (no output)" : lines.map((l) => `    ${l}`).join("\n");
}

/** `1.5 s`. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
