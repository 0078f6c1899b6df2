/**
 * When trades go out. Generated trades: every tick each connection is owed `rate × elapsed`
 * trades, the fraction carried to the next tick, at most one second's worth (a late tick must not
 * become a flood), none while paused or silent (the clock moves on, nothing accrues), and none for
 * a socket with more than `maxBufferedBytes` unsent (counted as a backpressure skip, the carry
 * dropped); generation stops for good at `maxTrades` in all. Replayed frames: each connection
 * replays from its first subscribe, at the recorded gaps or as fast as the socket takes them,
 * holding still while paused or silent.
 *
 * @module
 */
import type { GeneratedTrade } from "./generator.ts";
import { replayedTrades } from "./replay.ts";
import { type Connection, isSilent, sendTrades, type SimulatorState } from "./state.ts";

/** One generation tick over every connection (a no-op when replaying). */
export function generateTick(state: SimulatorState) {
  const { settings, counters, faults, rate } = state;
  const now = performance.now();
  if (faults.paused || isSilent(state) || rate <= 0 || settings.replay) {
    for (const connection of state.connections) connection.lastTick = now;
    return;
  }
  const wallNow = Date.now();
  for (const connection of state.connections) {
    const elapsed = now - connection.lastTick;
    connection.lastTick = now;
    if (!connection.open || connection.symbols.length === 0) continue;
    if (connection.socket.bufferedAmount > settings.maxBufferedBytes) {
      counters.backpressureSkips++;
      connection.carry = 0;
      continue;
    }
    const owed = Math.min(connection.carry + (rate * elapsed) / 1000, Math.max(rate, 1));
    let count = Math.floor(owed);
    connection.carry = owed - count;
    count = Math.min(count, settings.maxTrades - counters.tradesGenerated);
    if (count <= 0) continue;
    counters.tradesGenerated += count;
    for (const trades of connection.generator.frames(wallNow, count, connection.symbols)) {
      sendTrades(state, connection, trades, tradeFrameText(trades));
    }
  }
}

/** Starts replaying to a connection, once (its first subscribe); no-op unless replaying. */
export function startReplay(state: SimulatorState, connection: Connection) {
  const { replay, replayDelays, tickMs } = state.settings;
  if (!replay || connection.replayStarted) return;
  connection.replayStarted = true;
  let index = 0;
  const step = () => {
    if (!connection.open) return;
    // Send every frame that is due now; yield to the event loop every 500 frames.
    for (let sent = 0; sent < 500; sent++) {
      if (index >= replay.frames.length) {
        if (!replay.loop) return;
        index = 0;
      }
      if (isSilent(state) || state.faults.paused) {
        schedule(connection, step, tickMs);
        return;
      }
      const frame = replay.frames[index]!;
      sendTrades(state, connection, replayedTrades(frame.text), frame.text);
      index++;
      const delay = index < replayDelays.length ? replayDelays[index]! : 0;
      if (delay > 0) {
        schedule(connection, step, delay);
        return;
      }
    }
    schedule(connection, step, 0);
  };
  step();
}

/** A timer that dies with its connection (`forget` clears it). */
function schedule(connection: Connection, callback: () => void, ms: number) {
  const id = setTimeout(() => {
    connection.timers = connection.timers.filter((t) => t !== id);
    callback();
  }, ms);
  connection.timers.push(id);
}

/** A trade frame as Finnhub writes it: `data` first, then `type`. */
function tradeFrameText(trades: readonly GeneratedTrade[]): string {
  return `{"data":${JSON.stringify(trades)},"type":"trade"}`;
}
