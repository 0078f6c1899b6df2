import assert from "node:assert/strict";
import { displayHost, portTakenMessage } from "./ports.ts";

Deno.test("portTakenMessage() names the port, the holder and the variable that moves ours", () => {
  const needed = {
    host: "127.0.0.1",
    port: 8080,
    variable: "STATUS_PORT",
    purpose: "the status endpoint",
  };
  const message = portTakenMessage(needed, { pid: 42, command: "python3 -m http.server 8080" });
  assert.match(message, /^port 8080 on 127\.0\.0\.1, needed for the status endpoint/);
  assert.match(message, /in use by pid 42 \(python3 -m http\.server 8080\)/);
  assert.match(message, /set STATUS_PORT=<free port> in \.env/);
  assert.match(
    portTakenMessage(needed, { pid: 7, command: "/usr/bin/deno run -A /x/status/main.ts" }),
    /another `deno task start`/,
  );
  assert.match(portTakenMessage(needed, null), /another process \(not visible to this user\)/);
});

Deno.test("displayHost() shows a wildcard bind address as the loopback, IPv6 in brackets", () => {
  assert.equal(displayHost("0.0.0.0"), "127.0.0.1");
  assert.equal(displayHost("::"), "[::1]");
  assert.equal(displayHost("::1"), "[::1]");
  assert.equal(displayHost("[::1]"), "[::1]");
  assert.equal(displayHost("10.0.0.5"), "10.0.0.5");
});
