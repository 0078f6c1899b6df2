import assert from "node:assert/strict";
import { commandLine, listeningInodes, portFree, portHolder } from "./ports.ts";

const PROC_NET_TCP = [
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
  "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0",
  "   1: 0100007F:1F90 0100007F:D3A2 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0",
  "   2: 00000000:223D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0",
  "",
].join("\n");

Deno.test("listeningInodes() finds LISTEN sockets of a port, not connections to it", () => {
  assert.deepEqual(listeningInodes(PROC_NET_TCP, 8080), ["4242"]);
  assert.deepEqual(listeningInodes(PROC_NET_TCP, 8765), ["777"]);
  assert.deepEqual(listeningInodes(PROC_NET_TCP, 9), []);
});

Deno.test("commandLine() joins /proc cmdline arguments", () => {
  assert.equal(commandLine("deno\0run\0-A\0status/main.ts\0"), "deno run -A status/main.ts");
  assert.equal(commandLine("x".repeat(300)).length, 160);
});

Deno.test("portFree() and portHolder() see a port this process listens on", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  try {
    assert.equal(portFree("127.0.0.1", port), false);
    const holder = await portHolder(port);
    assert.equal(holder?.pid, Deno.pid);
    assert.match(holder!.command, /deno/);
  } finally {
    listener.close();
  }
  assert.equal(portFree("127.0.0.1", port), true);
});
