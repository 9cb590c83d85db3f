import { once } from "node:events";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import type { PeerCandidatePayload, PeerId } from "@automerge/automerge-repo/slim";
import { describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { CloseCode } from "../../src/net/close-codes.js";
import { joinProofBytes, newNonce, peerProofBytes } from "../../src/net/holder-proof.js";
import { verifyHolderSignature } from "../../src/net/tokens.js";
import type { DocMessage, PeerLink } from "../../src/net/peer-link.js";
import { decodeFrame, encodeFrame, type ClientOrServerMessage } from "../../src/net/wire.js";
import {
  boundToken,
  captureLogger,
  DOC_A,
  expectEcho,
  joinClient,
  openClient,
  rawClient,
  refusedUpgrade,
  SERVER_KEY,
  SERVER_PEER,
  SERVER_TOKEN,
  testKey,
  serversPerTest,
} from "./net-helpers.js";

const { setup, cleanups } = serversPerTest();

describe("the upgrade takes a token from any of its three carriers", () => {
  it("accepts a valid token in the Authorization header", async () => {
    const server = await setup();
    const client = await joinClient(server.url, { token: "ok.alice.student" });
    expect(client.peer).toMatchObject({ senderId: SERVER_PEER, targetId: "alice-peer", selectedProtocolVersion: "1" });
    // A client that sent no nonce (a stock one) is never shown the server's token.
    expect(client.peer.type === "peer" && client.peer.peerMetadata).toEqual({ ordoSeq: true });
    await expectEcho(client);
    expect(server.links[0]?.principal).toMatchObject({ user: "alice", role: "student" });
  });

  it("accepts `Sec-WebSocket-Protocol: bearer, <token>` and selects the bearer protocol", async () => {
    const server = await setup();
    const client = await joinClient(server.url, { protocols: ["bearer", "ok.bob.teacher"], peerId: "bob-peer" });
    expect(client.ws.protocol).toBe("bearer");
    await expectEcho(client, "bob-peer");
    expect(server.links[0]?.principal.user).toBe("bob");
  });

  it("accepts a token query parameter", async () => {
    const server = await setup();
    const client = await joinClient(`${server.url}?token=ok.carol.observer`, { protocols: [], peerId: "carol-peer" });
    await expectEcho(client, "carol-peer");
    expect(server.links[0]?.principal.user).toBe("carol");
  });

  it("answers 401 with a short JSON body and no upgrade for a missing, forged or expired token", async () => {
    const server = await setup();
    expect(await refusedUpgrade(server.url)).toEqual({ status: 401, body: { error: "unauthorized", problem: "no-token" } });
    expect(await refusedUpgrade(`${server.url}?token=forged`)).toEqual({ status: 401, body: { error: "unauthorized", problem: "forged" } });
    const expired = `ok.alice.student.${Date.now() - 1000}`;
    expect(await refusedUpgrade(server.url, { headers: { authorization: `Bearer ${expired}` } })).toMatchObject({
      status: 401,
      body: { problem: "expired" },
    });
    expect(server.sync.metrics()).toMatchObject({ accepted: 0, refused: { "no-token": 1, forged: 1, expired: 1 } });
  });

  it("never logs a token, valid or not", async () => {
    const logger = captureLogger();
    const server = await setup({ logger });
    const valid = "ok.dave.student";
    const client = await joinClient(`${server.url}?token=${valid}&x=1`, { protocols: [], peerId: "dave-peer" });
    await expectEcho(client, "dave-peer");
    await refusedUpgrade(`${server.url}?token=bad-token-9c1e`);
    client.ws.close();
    await client.closed;
    expect(logger.lines.length).toBeGreaterThan(2);
    const all = logger.lines.join("\n");
    expect(all).not.toContain(valid);
    expect(all).not.toContain("bad-token-9c1e");
    expect(all).not.toContain("token=");
  });
});

describe("the join handshake", () => {
  it("closes a connection that does not join in time with handshakeTimeout", async () => {
    const server = await setup({ limits: { handshakeTimeoutMs: 150 } });
    const raw = await rawClient(server.port, { token: "ok.alice.student" });
    expect(await raw.closed).toBe(CloseCode.handshakeTimeout);
    expect(server.sync.metrics().closedByCode[String(CloseCode.handshakeTimeout)]).toBe(1);
  });

  it("refuses a join without protocol version 1", async () => {
    const server = await setup();
    const raw = await rawClient(server.port, { token: "ok.alice.student" });
    raw.sendFrame({ payload: encodeFrame({ type: "join", senderId: "a", peerMetadata: {}, supportedProtocolVersions: ["2"] }) });
    expect(await raw.closed).toBe(CloseCode.malformedMessage);
    expect(raw.messages[0]).toMatchObject({ type: "error", message: "unsupported protocol version" });
  });

  it("refuses a join with a peer id held by another principal, and the victim stays connected", async () => {
    const server = await setup();
    const victim = await joinClient(server.url, { token: "ok.alice.student", peerId: "shared-peer" });
    const impostor = new WebSocket(server.url, { headers: { authorization: "Bearer ok.mallory.student" } });
    impostor.on("error", () => {});
    const received: ClientOrServerMessage[] = [];
    impostor.on("message", (data: Buffer) => received.push(decodeFrame(data)));
    await once(impostor, "open");
    impostor.send(encodeFrame({ type: "join", senderId: "shared-peer", peerMetadata: {}, supportedProtocolVersions: ["1"] }));
    const [code] = (await once(impostor, "close")) as [number];
    expect(code).toBe(CloseCode.peerIdTaken);
    expect(received[0]).toMatchObject({ type: "error", message: "peer id taken" });
    await expectEcho(victim, "shared-peer");
    expect(server.sync.links()).toHaveLength(1);
    expect(server.sync.links()[0]?.principal.user).toBe("alice");
  });

  it("refuses a join that takes the server's own peer id", async () => {
    const server = await setup();
    await expect(joinClient(server.url, { peerId: SERVER_PEER })).rejects.toThrow();
  });

  it("lets the same principal rejoin with its peer id, replacing the old link", async () => {
    const server = await setup();
    const first = await joinClient(server.url, { token: "ok.alice.student", peerId: "alice-peer" });
    const second = await joinClient(server.url, { token: "ok.alice.student", peerId: "alice-peer" });
    expect(await first.closed).toEqual({ code: CloseCode.normal, reason: "replaced" });
    await expectEcho(second);
    expect(server.sync.links()).toHaveLength(1);
  });
});

describe("proof of possession", () => {
  /** A join proof for the challenge this connection received. */
  const proveWith = (sign: (bytes: Uint8Array) => string, peerId = "alice-peer") => (challenge: string | undefined) => ({
    ordoProof: sign(joinProofBytes(challenge!, peerId)),
  });

  it("sends a fresh 32-byte challenge on every 101 response", async () => {
    const server = await setup();
    const first = await joinClient(server.url);
    const second = await joinClient(server.url, { token: "ok.bob.student", peerId: "bob-peer" });
    expect(first.challenge).toMatch(/^[\w-]{43}$/);
    expect(second.challenge).toMatch(/^[\w-]{43}$/);
    expect(first.challenge).not.toBe(second.challenge);
  });

  it("shows its token, signed over the client's nonce, only to a client that sent one", async () => {
    const server = await setup();
    const nonce = newNonce();
    const client = await joinClient(server.url, { metadata: () => ({ ordoNonce: nonce }) });
    const metadata = client.peer.peerMetadata;
    expect(metadata).toMatchObject({ ordoSeq: true, ordoToken: SERVER_TOKEN });
    expect(verifyHolderSignature(SERVER_KEY.publicKey, peerProofBytes(nonce, SERVER_PEER, "alice-peer"), metadata["ordoProof"] as string)).toBe(true);
    await expectEcho(client);
  });

  it("shows no token when it cannot prove it: no signer, or a token bound to another key", async () => {
    for (const identity of [{ token: () => SERVER_TOKEN }, { token: () => SERVER_TOKEN, sign: testKey().sign }, { token: () => "ok.relay.teacher", sign: SERVER_KEY.sign }]) {
      const server = await setup({ identity });
      const client = await joinClient(server.url, { metadata: () => ({ ordoNonce: newNonce() }) });
      expect(client.peer.peerMetadata).toEqual({ ordoSeq: true });
      await server.close();
    }
  });

  it("keeps handshake fields out of the extra metadata", async () => {
    const server = await setup({ metadata: () => ({ storageId: "relay-storage", ...({ ordoToken: "leak", ordoSeq: false } as object) }) });
    const client = await joinClient(server.url);
    expect(client.peer.peerMetadata).toEqual({ storageId: "relay-storage", ordoSeq: true });
  });

  it("refuses (unauthenticated) a server token replayed by a party without its key, whatever proof it adds", async () => {
    const server = await setup();
    const nonce = newNonce();
    const victim = await joinClient(server.url, { peerId: "victim-peer", metadata: () => ({ ordoNonce: nonce }) });
    const stolen = victim.peer.peerMetadata["ordoToken"] as string;
    const stolenProof = victim.peer.peerMetadata["ordoProof"] as string;
    expect(stolen).toBe(SERVER_TOKEN);
    const thief = testKey();
    const attempts: Array<[string, (challenge: string | undefined) => Record<string, unknown>]> = [
      ["no proof", () => ({})],
      ["a proof by the thief's own key", proveWith(thief.sign, "thief-peer")],
      ["the server's own peer proof", () => ({ ordoProof: stolenProof })],
      ["a proof that is not a string", () => ({ ordoProof: 42 })],
    ];
    for (const [name, metadata] of attempts) {
      const thiefClient = await openClient(server.url, { token: stolen, peerId: "thief-peer", metadata });
      expect(await thiefClient.next(), name).toMatchObject({ type: "error", message: "token holder proof missing or invalid" });
      expect(await thiefClient.closed, name).toMatchObject({ code: CloseCode.unauthenticated });
    }
    expect(server.sync.links().map((link) => link.remotePeerId)).toEqual(["victim-peer"]);
    expect(server.sync.metrics().closedByCode[String(CloseCode.unauthenticated)]).toBe(attempts.length);
  });

  it("joins a client that proves its key-bound token, and gives the link the holder key", async () => {
    const key = testKey();
    const server = await setup();
    const client = await joinClient(server.url, { token: boundToken("laptop", "node", key), metadata: proveWith(key.sign) });
    await expectEcho(client);
    expect(server.links[0]?.principal).toMatchObject({ user: "laptop", role: "node", holderKey: key.publicKey });
  });

  it("refuses (unauthenticated) a key-bound token with a missing or wrong proof", async () => {
    const key = testKey();
    const server = await setup();
    const token = boundToken("laptop", "node", key);
    // A bearer client's connection, whose challenge the proof below is made for.
    const otherChallenge = (await openClient(server.url, { peerId: "other-peer" })).challenge!;
    const wrong: Array<[string, (challenge: string | undefined) => Record<string, unknown>]> = [
      ["missing", () => ({})],
      ["another key", proveWith(testKey().sign)],
      ["another peer id", proveWith(key.sign, "someone-else")],
      ["another connection's challenge", () => ({ ordoProof: key.sign(joinProofBytes(otherChallenge, "alice-peer")) })],
      ["garbage", () => ({ ordoProof: "AAAA" })],
    ];
    for (const [name, metadata] of wrong) {
      const client = await openClient(server.url, { token, metadata });
      expect((await client.closed).code, name).toBe(CloseCode.unauthenticated);
    }
    expect(server.sync.links().map((link) => link.remotePeerId)).toEqual(["other-peer"]);
  });

  it("does not let an unproven join displace the holder's link", async () => {
    const key = testKey();
    const server = await setup();
    const token = boundToken("laptop", "node", key);
    const holder = await joinClient(server.url, { token, peerId: "laptop-peer", metadata: proveWith(key.sign, "laptop-peer") });
    const replay = await openClient(server.url, { token, peerId: "laptop-peer" });
    expect((await replay.closed).code).toBe(CloseCode.unauthenticated);
    await expectEcho(holder, "laptop-peer");
  });

  it("refuses a join whose ordoNonce is not 32 bytes of base64url", async () => {
    const server = await setup();
    for (const ordoNonce of ["short", 42, `${newNonce()}A`]) {
      const client = await openClient(server.url, { metadata: () => ({ ordoNonce }) });
      expect((await client.closed).code, String(ordoNonce)).toBe(CloseCode.malformedMessage);
    }
  });
});

describe("a stock automerge-repo client", () => {
  it("joins with ?token= and exchanges document messages both ways", async () => {
    const server = await setup({ echo: false });
    const adapter = new WebSocketClientAdapter(`${server.url}?token=ok.erin.student`, 60_000);
    cleanups.push(() => adapter.disconnect());
    const candidate = new Promise<PeerCandidatePayload>((resolve) => adapter.once("peer-candidate", resolve));
    const linked = server.nextLink();
    adapter.connect("stock-peer" as PeerId, {});
    const { peerId, peerMetadata } = await candidate;
    expect(peerId).toBe(SERVER_PEER);
    // It sent no nonce: it gets no token to replay.
    expect(peerMetadata).not.toHaveProperty("ordoToken");
    const link: PeerLink = await linked;
    expect(link.remotePeerId).toBe("stock-peer");

    const inbound = once(link, "message");
    const data = new Uint8Array([9, 8, 7]);
    adapter.send({ type: "sync", senderId: "stock-peer", targetId: SERVER_PEER, documentId: DOC_A, data } as never);
    expect(((await inbound) as [DocMessage])[0]).toEqual({ type: "sync", senderId: "stock-peer", targetId: SERVER_PEER, documentId: DOC_A, data });

    const outbound = new Promise<Record<string, unknown>>((resolve) => adapter.once("message", resolve as never));
    link.send({ type: "doc-unavailable", senderId: SERVER_PEER, targetId: "stock-peer", documentId: DOC_A });
    // Unnumbered: the stock client did not announce ordoSeq.
    expect(await outbound).toEqual({ type: "doc-unavailable", senderId: SERVER_PEER, targetId: "stock-peer", documentId: DOC_A });

    const synced = new Promise<Record<string, unknown>>((resolve) => adapter.once("message", resolve as never));
    link.send({ type: "sync", senderId: SERVER_PEER, targetId: "stock-peer", documentId: DOC_A, data: new Uint8Array([4, 5]) });
    expect(await synced).toMatchObject({ type: "sync", documentId: DOC_A, data: new Uint8Array([4, 5]) });
  });
});

describe("sending on a link", () => {
  it("drops, with an error logged, a message addressed to another peer, and the link stays up", async () => {
    const logger = captureLogger();
    const server = await setup({ echo: false, logger });
    const linked = server.nextLink();
    const client = await joinClient(server.url);
    const link = await linked;
    link.send({ type: "doc-unavailable", senderId: SERVER_PEER, targetId: "someone-else", documentId: DOC_A });
    link.send({ type: "sync", senderId: SERVER_PEER, targetId: "alice-peer", documentId: DOC_A, data: new Uint8Array() });
    link.send({ type: "doc-unavailable", senderId: SERVER_PEER, targetId: "alice-peer", documentId: DOC_A });
    expect(await client.next()).toMatchObject({ type: "doc-unavailable", targetId: "alice-peer" });
    expect(link.closed).toBe(false);
    expect(link.stats().messagesOut).toBe(1);
    expect(logger.lines.filter((line) => line.includes('"level":"error"'))).toHaveLength(2);
  });
});

describe("the server's own bookkeeping", () => {
  it("counts connections, traffic and closes", async () => {
    const server = await setup();
    const client = await joinClient(server.url);
    await expectEcho(client);
    const live = server.sync.metrics();
    expect(live).toMatchObject({ connectionsOpen: 1, linksOpen: 1, accepted: 1, messagesRefused: 0 });
    expect(live.bytesIn).toBeGreaterThan(20);
    expect(live.bytesOut).toBeGreaterThan(20);
    client.ws.close(1000);
    await client.closed;
    await new Promise((resolve) => setImmediate(resolve));
    expect(server.sync.metrics()).toMatchObject({ connectionsOpen: 0, linksOpen: 0, closedByCode: { "1000": 1 } });
  });

  it("closes every link with goingAway on close() and refuses new upgrades", async () => {
    const server = await setup();
    const client = await joinClient(server.url);
    await server.sync.close();
    expect((await client.closed).code).toBe(CloseCode.goingAway);
    expect(server.sync.links()).toHaveLength(0);
  });
});
