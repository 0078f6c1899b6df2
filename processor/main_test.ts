import assert from "node:assert/strict";
import { parseStage } from "./main.ts";

Deno.test("parseStage() reads --stage and --standby", () => {
  assert.deepEqual(parseStage([]), { stage: undefined, standby: false });
  assert.deepEqual(parseStage(["--stage", "gold"]), { stage: "gold", standby: false });
  assert.deepEqual(parseStage(["--stage", "gold", "--standby"]), { stage: "gold", standby: true });
  assert.deepEqual(parseStage(["-h"]), { help: true });
});

Deno.test("parseStage() refuses a standby of no stage and an unknown stage", () => {
  assert.throws(() => parseStage(["--standby"]), /--standby needs --stage/);
  assert.throws(() => parseStage(["--stage", "platinum"]), /--stage must be one of bronze/);
});
