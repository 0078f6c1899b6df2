/**
 * The lock every process of a checkout takes before it starts or stops local servers
 * (`.local/services.lock`), so two `up` at once start each server once: the second waits, then
 * finds it running.
 *
 * Taken by creating the file with `createNew` (atomic); the file holds the holder's pid and a
 * token, and only the holder removes it. A lock whose holder pid is dead, that stays unreadable
 * for 10 s, or that is older than 15 minutes is stale and broken.
 *
 * @module
 */

import { dirname } from "node:path";
import { delayUnlessAborted as delay } from "../shared/delay.ts";
import { ignoreNotFound, type Log } from "./_util.ts";
import { processAlive } from "./processes.ts";

const LOCK_TIMEOUT_MS = 15 * 60_000;

interface LockContent {
  pid: number;
  token: string;
  purpose: string;
  since: string;
}

/** Options of {@link withLock}. */
export interface LockOptions {
  /** The lock file. */
  file: string;
  /** What the holder does (`up`, `stop kafka`), shown to whoever waits. */
  purpose: string;
  log: Log;
  /** Aborts waiting for the lock. */
  signal?: AbortSignal | undefined;
}

/** Runs `fn` holding the lock file, waiting up to 15 minutes for another holder. */
export async function withLock<T>(options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const { file, log, signal } = options;
  await Deno.mkdir(dirname(file), { recursive: true });
  const mine: LockContent = {
    pid: Deno.pid,
    token: crypto.randomUUID(),
    purpose: options.purpose,
    since: new Date().toISOString(),
  };
  const deadline = performance.now() + LOCK_TIMEOUT_MS;
  let told = false;
  while (true) {
    signal?.throwIfAborted();
    if (await tryCreate(file, mine)) break;
    const holder = await readLock(file);
    if (holder === "gone") continue;
    if (await isStaleLock(file, holder)) {
      // Remove only if it is still the same stale lock, not a fresh one taken meanwhile.
      const again = await readLock(file);
      if (again !== "gone" && JSON.stringify(again) === JSON.stringify(holder)) {
        await Deno.remove(file).catch(ignoreNotFound);
        log(`removed a stale lock ${file}`);
      }
      continue;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `Timed out after ${LOCK_TIMEOUT_MS / 60_000} min waiting for ${file}` +
          (holder ? ` held by pid ${holder.pid} (${holder.purpose}) since ${holder.since}` : "") +
          ": if no local_services run is active, delete the file",
      );
    }
    if (!told && holder) {
      log(`waiting for another local_services run (pid ${holder.pid}: ${holder.purpose})...`);
      told = true;
    }
    await delay(500, signal);
  }
  try {
    return await fn();
  } finally {
    const current = await readLock(file);
    if (current !== "gone" && current?.token === mine.token) {
      await Deno.remove(file).catch(ignoreNotFound);
    }
  }
}

/** Creates the lock file holding `content`; false when it already exists. */
async function tryCreate(file: string, content: LockContent): Promise<boolean> {
  let handle: Deno.FsFile;
  try {
    handle = await Deno.open(file, { createNew: true, write: true });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    throw error;
  }
  try {
    await handle.write(new TextEncoder().encode(JSON.stringify(content) + "\n"));
  } finally {
    handle.close();
  }
  return true;
}

async function readLock(file: string): Promise<LockContent | null | "gone"> {
  try {
    const text = await Deno.readTextFile(file);
    try {
      const value = JSON.parse(text) as LockContent;
      return typeof value.pid === "number" ? value : null;
    } catch {
      return null; // being written right now, or garbage
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "gone";
    throw error;
  }
}

async function isStaleLock(file: string, holder: LockContent | null): Promise<boolean> {
  let ageMs = 0;
  try {
    ageMs = Date.now() - ((await Deno.stat(file)).mtime?.getTime() ?? Date.now());
  } catch {
    return false;
  }
  if (ageMs > LOCK_TIMEOUT_MS) return true;
  if (holder === null) return ageMs > 10_000; // unreadable for 10 s: a crashed writer
  return !(await processAlive(holder.pid));
}
