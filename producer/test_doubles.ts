/**
 * Test doubles for the producer's unit tests: a WebSocket the test drives by hand and a kafkajs
 * producer that records what it was sent.
 *
 * @module
 */
import type { ProducerRecord } from "kafkajs";
import type { WebSocketLike } from "./finnhub_client.ts";
import type { SendingProducer } from "./kafka_sink.ts";

/** A WebSocket whose server side the test plays: accept, send, close, refuse. */
export class FakeSocket implements WebSocketLike {
  binaryType: BinaryType = "blob";
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  readonly sent: string[] = [];
  closedBy: { code?: number | undefined; reason?: string | undefined } | null = null;
  /** Whether the socket is still there (dialling, open, or closing). */
  alive = true;

  constructor(readonly url: string) {}

  send(data: string): void {
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closedBy = { code, reason };
  }

  accept(): void {
    this.onopen?.(new Event("open"));
  }

  message(data: string): void {
    this.onmessage?.(new MessageEvent("message", { data }));
  }

  /** The close handshake completes (after our close() or the server's). */
  finishClose(code = 1000, reason = ""): void {
    this.alive = false;
    this.onclose?.(new CloseEvent("close", { code, reason }));
  }

  refuse(status: number): void {
    this.onerror?.(
      new ErrorEvent("error", {
        message: `NetworkError: failed to connect to WebSocket: Invalid status code: ${status}`,
      }),
    );
    this.finishClose(0);
  }

  subscribed(): string[] {
    return this.sent.map((s) => JSON.parse(s)).filter((m) => m.type === "subscribe").map((m) =>
      m.symbol
    );
  }
}

/** A stand-in for kafkajs: records every send, fails or hangs on demand. */
export class FakeProducer implements SendingProducer {
  readonly sends: ProducerRecord[] = [];
  readonly failures: Error[] = [];
  hang = false;
  connected = false;

  send(record: ProducerRecord): Promise<unknown> {
    const failure = this.failures.shift();
    if (failure) return Promise.reject(failure);
    if (this.hang) return new Promise(() => {});
    this.sends.push(record);
    return Promise.resolve([]);
  }

  connect(): Promise<void> {
    this.connected = true;
    return Promise.resolve();
  }

  disconnect(): Promise<void> {
    this.connected = false;
    return Promise.resolve();
  }

  delivered(topic: string): string[] {
    return this.sends.filter((s) => s.topic === topic).flatMap((s) =>
      s.messages.map((m) => String(m.value))
    );
  }
}
