import assert from "node:assert/strict";

/** Each kafkajs fix that swaps a module, with the assertion `createKafka` calls for it. */
const FIXES = [
  { module: "kafkajs_endtxn_retry.ts", assertion: "assertEndTxnRetryFixed" },
  { module: "kafkajs_produce_retry.ts", assertion: "assertProduceRetryFixed" },
];

for (const { module, assertion } of FIXES) {
  Deno.test(`${assertion}() throws when kafkajs loaded before ${module}`, async () => {
    const script = `import "kafkajs";
const { ${assertion} } = await import(${JSON.stringify(import.meta.resolve(`./${module}`))});
${assertion}();`;
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", script],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.notEqual(code, 0);
    assert.match(
      new TextDecoder().decode(stderr),
      new RegExp(`kafkajs was loaded before shared/${module.replace(".", "\\.")}`),
    );
  });
}
