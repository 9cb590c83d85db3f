import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { startWireMeter, type WireMeter } from "../../bench/wire-meter.js";
import { encodeFrame } from "../../src/net/wire.js";

/** An echo server behind a meter: what a client sends comes back once, so both directions carry the same messages. */
async function setup(): Promise<{ meter: WireMeter; server: WebSocketServer }> {
  const server = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  server.on("connection", (socket) => socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary })));
  const { port } = server.address() as { port: number };
  const meter = await startWireMeter(`ws://127.0.0.1:${port}`);
  cleanups.push(async () => {
    await meter.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { meter, server };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function open(url: string): Promise<WebSocket> {
  const socket = new WebSocket(url, { perMessageDeflate: false });
  socket.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  cleanups.push(async () => socket.terminate());
  return socket;
}

/** Sends each payload and waits for all the echoes. */
async function exchange(socket: WebSocket, send: (socket: WebSocket) => void, replies: number): Promise<void> {
  const done = new Promise<void>((resolve) => {
    let seen = 0;
    const onMessage = () => {
      if (++seen < replies) return;
      socket.off("message", onMessage);
      resolve();
    };
    socket.on("message", onMessage);
  });
  send(socket);
  await done;
}

describe("the wire meter", () => {
  it("counts whole WebSocket messages and their payload bytes each way, whatever their length or fragments, and no pings", async () => {
    const { meter } = await setup();
    const socket = await open(meter.url);
    await exchange(
      socket,
      (s) => {
        s.send(Buffer.alloc(10)); // 7-bit length
        s.send(Buffer.alloc(300)); // 16-bit length
        s.send(Buffer.alloc(70_000)); // 64-bit length
        s.send("text", { binary: false });
        // One message in two frames.
        s.send(Buffer.alloc(5), { fin: false });
        s.send(Buffer.alloc(7), { fin: true });
        s.ping();
      },
      5,
    );
    const window = meter.window();
    expect(window).toMatchObject({ connections: 1, messagesUp: 5, messagesDown: 5, bytesUp: 10 + 300 + 70_000 + 4 + 12, bytesDown: 10 + 300 + 70_000 + 4 + 12 });
    expect(window.connectedAt).not.toBeNull();
    expect(window.lastMessageAt).toBeGreaterThanOrEqual(window.connectedAt!);
  });

  it("does not count a link's ordo-sent, its count of messages sent, either way", async () => {
    const { meter } = await setup();
    const socket = await open(meter.url);
    const sentCount = encodeFrame({ type: "ordo-sent", senderId: "a", targetId: "b", count: 12 });
    await exchange(
      socket,
      (s) => {
        s.send(Buffer.alloc(10));
        s.send(sentCount);
      },
      2,
    );
    expect(meter.window()).toMatchObject({ messagesUp: 1, messagesDown: 1, bytesUp: 10, bytesDown: 10 });
  });

  it("starts a new window on mark, where a connection cut before it counts nothing", async () => {
    const { meter } = await setup();
    const first = await open(meter.url);
    await exchange(first, (s) => s.send("before"), 1);
    const closed = new Promise<void>((resolve) => first.once("close", () => resolve()));
    meter.mark();
    meter.cut();
    await closed;
    expect(meter.window()).toMatchObject({ connections: 0, messagesUp: 0, messagesDown: 0, connectedAt: null });
    const second = await open(meter.url);
    await exchange(second, (s) => s.send("after"), 1);
    expect(meter.window()).toMatchObject({ connections: 1, messagesUp: 1, messagesDown: 1, bytesUp: 5 });
    const quiet = await meter.whenQuiet(50, performance.now() + 5_000);
    expect(quiet?.messagesDown).toBe(1);
  });

  it("tells connections the server ended from those it cut, and waits for quiet only while connected", async () => {
    const { meter, server } = await setup();
    const socket = await open(meter.url);
    await exchange(socket, (s) => s.send("hello"), 1);
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    for (const client of server.clients) client.terminate();
    await closed;
    expect(meter.window()).toMatchObject({ connections: 1, serverCloses: 1 });
    // The joining side lost its connection: it is not done, whatever the wire says.
    expect(await meter.whenQuiet(10, performance.now() + 200)).toBeUndefined();
    meter.mark();
    const again = await open(meter.url);
    await exchange(again, (s) => s.send("again"), 1);
    meter.cut();
    await new Promise<void>((resolve) => again.once("close", () => resolve()));
    expect(meter.window()).toMatchObject({ connections: 1, serverCloses: 0 });
  });

  it("refuses connections while offline, as a machine without a network would, and takes them again when online", async () => {
    const { meter } = await setup();
    await meter.setOnline(false);
    await expect(open(meter.url)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await meter.setOnline(true);
    const socket = await open(meter.url);
    await exchange(socket, (s) => s.send("back"), 1);
    expect(meter.window().messagesUp).toBe(1);
  });

  it("gives up waiting for quiet at the deadline when nothing crossed", async () => {
    const { meter } = await setup();
    expect(await meter.whenQuiet(10, performance.now() + 100)).toBeUndefined();
  });
});
