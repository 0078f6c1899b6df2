/**
 * Injecting a {@linkcode Fault} into a running simulator: a drop or a burst of fault frames acts at
 * once; the others leave state in {@linkcode FaultState} that the handshake, the send path and the
 * pacing read (`silence`, `pause`, `duplicate`, `refuse`), or arm timers (`drop-every` on each
 * connection as it opens, `malformed-every`/`hostile-every` as one interval per catalogue,
 * replaced when injected again and cleared on close). The catalogues are sent in turn, each
 * picking up where the last burst stopped.
 *
 * @module
 */
import { type Fault, type FaultFrame, hostileFrames, MALFORMED_FRAMES } from "./faults.ts";
import {
  closeConnection,
  type Connection,
  type FaultKind,
  type FaultState,
  sendFault,
  type SimulatorState,
} from "./state.ts";

/** Injects a fault now (what `POST /control/fault` does). */
export function inject(state: SimulatorState, fault: Fault) {
  const { faults, connections } = state;
  state.settings.log.info("fault injected", { fault: JSON.stringify(fault) });
  switch (fault.type) {
    case "drop":
      for (const connection of [...connections]) {
        closeConnection(state, connection, 1001, "simulated drop");
      }
      return;
    case "drop-every":
      faults.dropEveryMs = fault.ms;
      for (const connection of connections) armDrop(state, connection);
      return;
    case "silence":
      faults.silentUntil = Date.now() + fault.ms;
      return;
    case "malformed":
    case "hostile":
      sendFaults(state, fault.type, fault.count ?? catalogueOf(fault.type).length);
      return;
    case "malformed-every":
    case "hostile-every": {
      const kind = fault.type === "malformed-every" ? "malformed" : "hostile";
      clearInterval(faults.periodic[kind]);
      delete faults.periodic[kind];
      if (fault.ms > 0) {
        faults.periodic[kind] = setInterval(() => sendFaults(state, kind, 1), fault.ms);
      }
      return;
    }
    case "duplicate":
      faults.duplicatePending += fault.count ?? 1;
      return;
    case "refuse":
      faults.refusal = { status: fault.status, count: fault.count ?? 1 };
      return;
    case "pause":
      faults.paused = true;
      return;
    case "resume":
      faults.paused = false;
      return;
  }
}

/** (Re)starts a connection's `drop-every` timer, or stops it when that fault is off. */
export function armDrop(state: SimulatorState, connection: Connection) {
  if (connection.dropTimer !== undefined) clearTimeout(connection.dropTimer);
  connection.dropTimer = undefined;
  if (state.faults.dropEveryMs <= 0) return;
  connection.dropTimer = setTimeout(() => {
    state.settings.log.info("fault: dropping the connection", { connection: connection.id });
    closeConnection(state, connection, 1001, "simulated drop");
  }, state.faults.dropEveryMs);
}

/** Takes one handshake refusal of a `refuse` fault: its status, or undefined when none is due. */
export function takeRefusal(faults: FaultState): 401 | 429 | undefined {
  const { refusal } = faults;
  if (!refusal || refusal.count <= 0) return undefined;
  refusal.count--;
  if (refusal.count === 0) faults.refusal = undefined;
  return refusal.status;
}

/** Stops the periodic fault frames (at close). */
export function stopPeriodicFaults(faults: FaultState) {
  clearInterval(faults.periodic.malformed);
  clearInterval(faults.periodic.hostile);
}

function catalogueOf(kind: FaultKind): readonly FaultFrame[] {
  return kind === "malformed" ? MALFORMED_FRAMES : hostileFrames();
}

/** Sends the next `count` frames of a catalogue, in turn, to every open connection. */
function sendFaults(state: SimulatorState, kind: FaultKind, count: number) {
  const catalogue = catalogueOf(kind);
  for (let i = 0; i < count; i++) {
    const frame = catalogue[state.faults.next[kind]++ % catalogue.length]!;
    for (const connection of state.connections) sendFault(state, connection, frame);
  }
}
