import { once } from "node:events";
import { cbor } from "@automerge/automerge-repo/slim";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../src/net/close-codes.js";
import type { PeerLink } from "../../src/net/peer-link.js";
import { encodeFrame } from "../../src/net/wire.js";
import type { WsLink } from "../../src/net/ws-link.js";
import {
  DOC_A,
  docId,
  expectEcho,
  joinClient,
  rawClient,
  refusedUpgrade,
  SERVER_PEER,
  syncMessage,
  type FrameSpec,
  serversPerTest,
} from "./net-helpers.js";

const { setup } = serversPerTest();

const FRAME_CAP = 1024;
const stock = (value: unknown) => cbor.encode(value as object);
const bytes = (...values: number[]) => new Uint8Array(values);
const validSync = stock(syncMessage("raw-peer"));

/** Frames that are not the protocol, and the close code each must earn. */
const BAD_FRAMES: Array<{ name: string; frame: FrameSpec; code: number }> = [
  { name: "an unmasked client frame", frame: { payload: validSync, mask: false }, code: 1002 },
  { name: "a frame with RSV1 set and no extension", frame: { payload: validSync, rsv1: true }, code: 1002 },
  { name: "a text frame of invalid UTF-8", frame: { payload: bytes(0xc3, 0x28, 0xff), opcode: 1 }, code: 1007 },
  { name: "a frame over the cap", frame: { payload: new Uint8Array(FRAME_CAP + 1) }, code: 1009 },
  { name: "a valid text frame (the protocol is binary)", frame: { payload: '{"type":"sync"}', opcode: 1 }, code: CloseCode.malformedMessage },
  { name: "an empty binary frame", frame: { payload: bytes() }, code: CloseCode.malformedMessage },
  { name: "the 1-byte body f6 (null)", frame: { payload: bytes(0xf6) }, code: CloseCode.malformedMessage },
  { name: "the 1-byte body 05", frame: { payload: bytes(0x05) }, code: CloseCode.malformedMessage },
  { name: "the 1-byte body f5 (true)", frame: { payload: bytes(0xf5) }, code: CloseCode.malformedMessage },
  { name: "the body 6178 ('x')", frame: { payload: bytes(0x61, 0x78) }, code: CloseCode.malformedMessage },
  { name: "CBOR that does not decode", frame: { payload: bytes(0xa2, 0x61) }, code: CloseCode.malformedMessage },
  { name: "an array, not a map", frame: { payload: stock([1, 2, 3]) }, code: CloseCode.malformedMessage },
  { name: "a sync message without data", frame: { payload: stock({ ...syncMessage("raw-peer"), data: undefined }) }, code: CloseCode.malformedMessage },
  { name: "a join whose metadata is a list", frame: { payload: stock({ type: "join", senderId: "raw-peer", peerMetadata: [], supportedProtocolVersions: ["1"] }) }, code: CloseCode.malformedMessage },
  { name: "an unknown message type", frame: { payload: stock({ type: "gossip", senderId: "raw-peer", targetId: SERVER_PEER }) }, code: CloseCode.malformedMessage },
  { name: "CBOR nested 500 deep", frame: { payload: new Uint8Array(500).fill(0x81) }, code: CloseCode.malformedMessage },
];

describe.each(["before", "after"])("a malformed frame sent %s the join closes only its own connection", (phase) => {
  it.each(BAD_FRAMES)("$name", async ({ frame, code }) => {
    const server = await setup({ limits: { maxFrameBytes: FRAME_CAP } });
    const honest = await joinClient(server.url);
    const raw = await rawClient(server.port, { token: "ok.mallory.student", ...(phase === "after" ? { join: "raw-peer" } : {}) });
    raw.sendFrame(frame);
    expect(await raw.closed).toBe(code);
    await expectEcho(honest);
    const another = await joinClient(server.url, { token: "ok.bob.student", peerId: "bob-peer" });
    await expectEcho(another, "bob-peer");
    expect(server.sync.metrics().messagesRefused).toBe(1);
  });
});

describe("per-connection limits", () => {
  it("closes a connection sending faster than the rate limit with rateLimited", async () => {
    const server = await setup({ echo: false, limits: { messagesPerSecond: 10, messageBurst: 20 } });
    const flooder = await joinClient(server.url);
    for (let i = 0; i < 50; i++) flooder.send(syncMessage("alice-peer"));
    expect((await flooder.closed).code).toBe(CloseCode.rateLimited);
  });

  it("counts pings against the rate limit too", async () => {
    const server = await setup({ limits: { messagesPerSecond: 10, messageBurst: 20 } });
    const honest = await joinClient(server.url);
    const pinger = await rawClient(server.port, { token: "ok.mallory.student", join: "pinger-peer" });
    for (let i = 0; i < 50; i++) pinger.sendFrame({ opcode: 9, payload: "" });
    expect(await pinger.closed).toBe(CloseCode.rateLimited);
    await expectEcho(honest);
  });

  it("closes a connection naming more distinct documents than allowed with tooManyDocuments", async () => {
    const server = await setup({ echo: false, limits: { maxDocuments: 5 } });
    const link = server.nextLink();
    const scanner = await joinClient(server.url);
    const linkClosed = once(await link, "close");
    for (let i = 0; i < 5; i++) scanner.send(syncMessage("alice-peer", docId(i)));
    for (let i = 0; i < 5; i++) scanner.send(syncMessage("alice-peer", docId(i)));
    scanner.send(syncMessage("alice-peer", docId(5)));
    expect((await scanner.closed).code).toBe(CloseCode.tooManyDocuments);
    expect(await linkClosed).toEqual([{ code: CloseCode.tooManyDocuments, reason: "too many documents" }]);
  });

  it("drops a client that stops reading once its unsent data passes the cap, and frees it", async () => {
    const cap = 64 * 1024;
    const server = await setup({ echo: false, limits: { maxBufferedBytes: cap } });
    const linked = server.nextLink();
    const reader = await rawClient(server.port, { token: "ok.alice.student", join: "slow-peer" });
    reader.socket.pause();
    const link = (await linked) as WsLink;
    const closed = once(link, "close");
    const chunk = 16 * 1024;
    let sent = 0;
    while (!link.closed && sent < 4096) {
      link.send({ type: "sync", senderId: SERVER_PEER, targetId: "slow-peer", documentId: DOC_A, data: new Uint8Array(chunk).fill(7) });
      sent += 1;
    }
    expect(link.closed).toBe(true);
    expect(await closed).toEqual([{ code: CloseCode.slowConsumer, reason: "slow consumer" }]);
    // What got out before the drop is what the kernel's socket buffers took, plus the cap.
    expect(sent * chunk).toBeLessThan(48 * 1024 * 1024);
    await link.socketClosed;
    expect(server.sync.metrics().connectionsOpen).toBe(0);
  });

  it("closes a live link when its token expires", async () => {
    const server = await setup();
    const client = await joinClient(server.url, { token: `ok.alice.student.${Date.now() + 300}` });
    await expectEcho(client);
    expect(await client.closed).toEqual({ code: CloseCode.tokenExpired, reason: "token expired" });
  });

  it("closes a link whose messages name another sender", async () => {
    const server = await setup();
    const client = await joinClient(server.url);
    client.send(syncMessage("someone-else"));
    expect((await client.closed).code).toBe(CloseCode.malformedMessage);
  });

  it("checks and drops messages it does not act on, and ends on leave", async () => {
    const server = await setup({ echo: false });
    const linked = server.nextLink();
    const client = await joinClient(server.url);
    const link: PeerLink = await linked;
    const seen: unknown[] = [];
    link.on("message", (message) => seen.push(message));
    client.send({ type: "ephemeral", senderId: "alice-peer", targetId: SERVER_PEER, documentId: DOC_A, data: bytes(1), count: 1, sessionId: "s" });
    client.send({ type: "remote-subscription-change", senderId: "alice-peer", targetId: SERVER_PEER, add: ["x"] });
    client.send({ type: "leave", senderId: "alice-peer" });
    expect((await client.closed).code).toBe(CloseCode.normal);
    expect(seen).toEqual([]);
  });
});

describe("sequence numbers between Ordo peers", () => {
  async function sequencedClient() {
    const server = await setup();
    const client = await joinClient(server.url, { ordoSeq: true });
    return { server, client };
  }

  it("numbers each direction from 1 when both sides announce ordoSeq", async () => {
    const { client, server } = await sequencedClient();
    client.send({ ...syncMessage("alice-peer"), ordoSeq: 1 });
    expect(await client.next()).toMatchObject({ type: "sync", ordoSeq: 1 });
    client.send({ ...syncMessage("alice-peer"), ordoSeq: 2 });
    expect(await client.next()).toMatchObject({ type: "sync", ordoSeq: 2 });
    expect((server.links[0] as WsLink).sequenced).toBe(true);
  });

  it.each([
    { name: "a duplicated", seqs: [1, 1] },
    { name: "a skipped", seqs: [1, 3] },
    { name: "a reordered", seqs: [2, 1] },
    { name: "a missing", seqs: [1, undefined] },
  ])("closes with outOfSequence on $name sequence number", async ({ seqs }) => {
    const { client } = await sequencedClient();
    for (const seq of seqs) client.send({ ...syncMessage("alice-peer"), ...(seq === undefined ? {} : { ordoSeq: seq }) });
    expect((await client.closed).code).toBe(CloseCode.outOfSequence);
  });

  it("numbers nothing for a peer that did not announce it", async () => {
    const server = await setup();
    const client = await joinClient(server.url);
    client.ws.send(encodeFrame({ ...syncMessage("alice-peer"), ordoSeq: 5 }));
    const answer = await client.next();
    expect(answer.type === "sync" && answer.ordoSeq).toBeUndefined();
    expect((server.links[0] as WsLink).sequenced).toBe(false);
  });
});

describe("connections from one address", () => {
  it("refuses more than the cap from one address with 429, serves other addresses, and admits again once one closes", async () => {
    const server = await setup({ limits: { maxConnectionsPerAddress: 3 } });
    const open = await Promise.all([1, 2, 3].map((n) => joinClient(server.url, { token: `ok.user${n}.student`, peerId: `peer-${n}` })));
    expect(await refusedUpgrade(server.url, { headers: { authorization: "Bearer ok.mallory.student" } })).toEqual({ status: 429, body: { error: "too many connections" } });
    // Another address (loopback has many) is not affected.
    const elsewhere = await joinClient(server.url, { token: "ok.bob.student", peerId: "bob-peer", socket: { localAddress: "127.0.0.2" } });
    await expectEcho(elsewhere, "bob-peer");
    await expectEcho(open[0]!, "peer-1");
    open[1]!.ws.close();
    await open[1]!.closed;
    const again = await joinClient(server.url, { token: "ok.carol.student", peerId: "carol-peer" });
    await expectEcho(again, "carol-peer");
  });
});
