import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../src/net/close-codes.js";
import type { PeerLink } from "../../src/net/peer-link.js";
import {
  PeerDialer,
  type PeerDialerOptions,
  type RetryScheduled,
} from "../../src/net/peer-dialer.js";
import { backoffDelay, DEFAULT_BACKOFF } from "../../src/net/backoff.js";
import { CHALLENGE_HEADER, joinProofBytes, newNonce, peerProofBytes } from "../../src/net/holder-proof.js";
import { verifyHolderSignature } from "../../src/net/tokens.js";
import { decodeFrame, encodeFrame, type ClientOrServerMessage, type JoinMessage } from "../../src/net/wire.js";
import type { WsLink } from "../../src/net/ws-link.js";
import {
  boundToken,
  captureLogger,
  DOC_A,
  serversPerTest,
  SERVER_KEY,
  SERVER_PEER,
  SERVER_TOKEN,
  testKey,
  testVerifier,
} from "./net-helpers.js";

const { setup, cleanups } = serversPerTest();

/** A dialer whose links and retries are recorded. */
function dial(url: string, options: Partial<PeerDialerOptions> = {}) {
  const links: PeerLink[] = [];
  const retries: RetryScheduled[] = [];
  const dialer = new PeerDialer({
    url,
    identity: { token: () => "ok.dana.student" },
    peerId: "dana-peer",
    metadata: () => ({ storageId: "dana-storage" }),
    verifier: testVerifier,
    onLink: (link) => links.push(link),
    backoff: { initialMs: 10, maxMs: 80, factor: 2 },
    ...options,
  });
  dialer.on("retry", (retry) => retries.push(retry));
  cleanups.push(() => dialer.stop());
  dialer.start();
  const until = async (predicate: () => boolean) => {
    while (!predicate()) await Promise.race([once(dialer, "state"), once(dialer, "retry")]);
  };
  return { dialer, links, retries, until };
}

/**
 * A bare ws server that sends a challenge and answers each join with whatever `answer`
 * makes of it: a server that lies about who it is, which `SyncServer` never does.
 */
async function fakeServer(answer: (join: JoinMessage) => Record<string, unknown>) {
  const http = createServer();
  const wss = new WebSocketServer({ server: http });
  wss.on("headers", (headers) => headers.push(`${CHALLENGE_HEADER}: ${newNonce()}`));
  const closes: number[] = [];
  wss.on("connection", (ws) => {
    ws.on("error", () => {});
    ws.on("close", (code) => closes.push(code));
    ws.on("message", (data: Buffer) => {
      const join = decodeFrame(data);
      if (join.type !== "join") return;
      const peer = { type: "peer", senderId: SERVER_PEER, targetId: join.senderId, selectedProtocolVersion: "1", peerMetadata: { ordoSeq: true, ...answer(join) } };
      ws.send(encodeFrame(peer as ClientOrServerMessage));
    });
  });
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  cleanups.push(async () => {
    for (const client of wss.clients) client.terminate();
    wss.close();
    await new Promise((resolve) => http.close(resolve));
  });
  return { url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/`, closes };
}

describe("backoffDelay", () => {
  it("grows by the factor up to the cap, with full jitter below it", () => {
    const top = () => 0.999_999;
    expect([0, 1, 2, 3, 4, 10, 50].map((n) => backoffDelay(n, DEFAULT_BACKOFF, top))).toEqual([
      249, 499, 999, 1999, 3999, 29_999, 29_999,
    ]);
    expect(backoffDelay(5, DEFAULT_BACKOFF, () => 0)).toBe(0);
    for (let attempt = 0; attempt < 20; attempt++) {
      const delay = backoffDelay(attempt, DEFAULT_BACKOFF, Math.random);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(Math.min(30_000, 250 * 2 ** attempt));
    }
  });
});

describe("PeerDialer", () => {
  it("joins, learns the server's identity from its token, and exchanges numbered messages", async () => {
    const server = await setup();
    const serverLink = server.nextLink();
    const { dialer, until } = dial(server.url);
    await until(() => dialer.state === "connected");
    const link = dialer.link as WsLink;
    expect(link.direction).toBe("outbound");
    expect(link.principal).toMatchObject({ user: "relay", role: "node", holderKey: SERVER_KEY.publicKey });
    expect(link.remotePeerId).toBe(SERVER_PEER);
    expect(link.sequenced).toBe(true);
    const inbound = await serverLink;
    expect(inbound.principal.user).toBe("dana");
    expect(inbound.remoteMetadata).toMatchObject({ storageId: "dana-storage", ordoSeq: true });

    for (const n of [1, 2, 3]) {
      const echoed = once(link, "message");
      link.send({ type: "sync", senderId: "dana-peer", targetId: SERVER_PEER, documentId: DOC_A, data: new Uint8Array([n]) });
      expect(await echoed).toEqual([{ type: "sync", senderId: SERVER_PEER, targetId: "dana-peer", documentId: DOC_A, data: new Uint8Array([n]) }]);
    }
  });

  it("refuses a server that cannot prove its token (unauthenticated) and keeps retrying", async () => {
    // A server without a signer, or whose token is forged or bound to another key, presents no token at all.
    for (const identity of [
      { token: () => SERVER_TOKEN },
      { token: () => "forged", sign: SERVER_KEY.sign },
      { token: () => SERVER_TOKEN, sign: testKey().sign },
    ]) {
      const server = await setup({ identity });
      const serverLink = server.nextLink();
      const { dialer, retries, until } = dial(server.url);
      expect((await once(await serverLink, "close"))[0]).toMatchObject({ code: CloseCode.unauthenticated });
      await until(() => retries.length >= 2);
      expect(dialer.link).toBeUndefined();
      await dialer.stop();
    }
  });

  it("refuses a server presenting a token it took from someone's peer message, whatever proof it adds", async () => {
    const thief = testKey();
    const stolenProof = SERVER_KEY.sign(peerProofBytes(newNonce(), SERVER_PEER, "dana-peer"));
    const lies: Array<[string, (join: JoinMessage) => Record<string, unknown>]> = [
      ["no token", () => ({})],
      ["a forged token", () => ({ ordoToken: "forged" })],
      ["the replayed token without a proof", () => ({ ordoToken: SERVER_TOKEN })],
      ["the replayed token with a proof by another key", (join) => ({ ordoToken: SERVER_TOKEN, ordoProof: thief.sign(peerProofBytes(join.peerMetadata["ordoNonce"] as string, SERVER_PEER, "dana-peer")) })],
      ["the replayed token with a proof over another nonce", () => ({ ordoToken: SERVER_TOKEN, ordoProof: stolenProof })],
      ["a bearer token with a proof", (join) => ({ ordoToken: "ok.bob.teacher", ordoProof: thief.sign(peerProofBytes(join.peerMetadata["ordoNonce"] as string, SERVER_PEER, "dana-peer")) })],
    ];
    for (const [name, lie] of lies) {
      const server = await fakeServer(lie);
      const logger = captureLogger();
      const { dialer, retries, until } = dial(server.url, { logger });
      await until(() => retries.length >= 2);
      expect(dialer.link, name).toBeUndefined();
      expect(server.closes, name).toContain(CloseCode.unauthenticated);
      await dialer.stop();
    }
  });

  it("accepts a server that signs our nonce with its token's key, and learns its principal", async () => {
    const server = await fakeServer((join) => ({
      ordoToken: SERVER_TOKEN,
      ordoProof: SERVER_KEY.sign(peerProofBytes(join.peerMetadata["ordoNonce"] as string, SERVER_PEER, join.senderId)),
    }));
    const { dialer, until } = dial(server.url);
    await until(() => dialer.state === "connected");
    expect(dialer.link?.principal).toMatchObject({ user: "relay", role: "node", holderKey: SERVER_KEY.publicKey });
  });

  it("proves a key-bound token over the server's challenge, so the server accepts it", async () => {
    const key = testKey();
    const server = await setup();
    const serverLink = server.nextLink();
    const { dialer, until } = dial(server.url, { identity: { token: () => boundToken("laptop", "node", key), sign: key.sign } });
    await until(() => dialer.state === "connected");
    const inbound = await serverLink;
    expect(inbound.principal).toMatchObject({ user: "laptop", role: "node", holderKey: key.publicKey });
    expect(inbound.remoteMetadata).toMatchObject({ ordoSeq: true, ordoNonce: expect.stringMatching(/^[\w-]{43}$/), ordoProof: expect.any(String) });
    expect(inbound.remoteMetadata).not.toHaveProperty("ordoToken");
  });

  it("is refused (unauthenticated) with a key-bound token it cannot prove", async () => {
    const key = testKey();
    for (const sign of [undefined, testKey().sign]) {
      const server = await setup();
      const { dialer, retries, until } = dial(server.url, { identity: { token: () => boundToken("laptop", "node", key), ...(sign ? { sign } : {}) } });
      await until(() => retries.length >= 1);
      expect(retries[0]?.reason).toContain(String(CloseCode.unauthenticated));
      expect(server.sync.links()).toHaveLength(0);
      await dialer.stop();
    }
  });

  it("signs exactly the challenge and its own peer id", async () => {
    const key = testKey();
    let seen: { challenge: string | undefined; proof: unknown } | undefined;
    const http = createServer();
    const wss = new WebSocketServer({ server: http });
    const challenge = newNonce();
    wss.on("headers", (headers) => headers.push(`${CHALLENGE_HEADER}: ${challenge}`));
    wss.on("connection", (ws) => {
      ws.on("error", () => {});
      ws.once("message", (data: Buffer) => {
        const join = decodeFrame(data) as JoinMessage;
        seen = { challenge, proof: join.peerMetadata["ordoProof"] };
        ws.close(CloseCode.goingAway);
      });
    });
    http.listen(0, "127.0.0.1");
    await once(http, "listening");
    cleanups.push(async () => {
      wss.close();
      await new Promise((resolve) => http.close(resolve));
    });
    const { retries, until } = dial(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/`, { identity: { token: () => boundToken("laptop", "node", key), sign: key.sign } });
    await until(() => retries.length >= 1);
    expect(verifyHolderSignature(key.publicKey, joinProofBytes(seen!.challenge!, "dana-peer"), seen!.proof as string)).toBe(true);
  });

  it("logs a 401 as such and retries, picking up a renewed token", async () => {
    const server = await setup();
    const logger = captureLogger();
    let token = "expired-or-bad";
    const { dialer, retries, until } = dial(server.url, { identity: { token: () => token }, logger });
    await until(() => retries.length >= 2);
    expect(logger.lines.some((line) => line.includes("401"))).toBe(true);
    expect(dialer.state).not.toBe("connected");
    token = "ok.dana.student";
    await until(() => dialer.state === "connected");
    expect(logger.lines.join("\n")).not.toContain("ok.dana.student");
  });

  it("redials after each lost link with growing jittered delays, then resumes", async () => {
    let kills = 5;
    const server = await setup({
      onLink: (link) => {
        if (kills-- > 0) link.close(CloseCode.goingAway, "restarting");
        else link.on("message", (m) => link.send({ ...m, senderId: m.targetId, targetId: m.senderId }));
      },
    });
    const { dialer, retries, until } = dial(server.url, { random: () => 0.5 });
    await until(() => retries.length === 5 && dialer.state === "connected");
    // Full jitter at 0.5: half of min(80, 10 * 2^n).
    expect(retries.map((r) => r.delayMs)).toEqual([5, 10, 20, 40, 40]);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2, 3, 4, 5]);
    const link = dialer.link!;
    const echoed = once(link, "message");
    link.send({ type: "doc-unavailable", senderId: "dana-peer", targetId: SERVER_PEER, documentId: DOC_A });
    expect((await echoed)[0]).toMatchObject({ type: "doc-unavailable", documentId: DOC_A });
  });

  it("keeps every delay within its bound with real jitter, and says when it retries next", async () => {
    const server = await setup({ onLink: (link) => link.close(CloseCode.goingAway, "no") });
    const { dialer, retries, until } = dial(server.url);
    await until(() => retries.length >= 6);
    retries.forEach((retry, n) => {
      expect(retry.delayMs).toBeGreaterThanOrEqual(0);
      expect(retry.delayMs).toBeLessThan(Math.min(80, 10 * 2 ** n));
    });
    await until(() => dialer.state === "waiting");
    expect(dialer.nextRetryAt).toBeGreaterThan(Date.now() - 100);
  });

  it("starts the backoff over after a link that lasted a while", async () => {
    let first = true;
    const server = await setup({
      onLink: (link) => {
        const hold = first ? 120 : 0;
        first = false;
        setTimeout(() => link.close(CloseCode.goingAway, "bye"), hold);
      },
    });
    const { retries, until } = dial(server.url, { backoff: { initialMs: 10, maxMs: 80, factor: 2, resetAfterMs: 100 } });
    await until(() => retries.length >= 3);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2, 3]);
  });

  it("stops: closes its link with goingAway and dials no more", async () => {
    const server = await setup();
    const serverLink = server.nextLink();
    const { dialer, retries, until } = dial(server.url);
    await until(() => dialer.state === "connected");
    const closed = once(await serverLink, "close");
    await dialer.stop();
    expect(dialer.state).toBe("stopped");
    expect((await closed)[0]).toMatchObject({ code: CloseCode.goingAway });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(retries).toHaveLength(0);
    expect(server.sync.links()).toHaveLength(0);
  });

  it("refuses a URL that is not ws:// or wss:// at construction", () => {
    for (const url of ["http://127.0.0.1:1/", "not a url"]) {
      expect(() => new PeerDialer({ url, identity: { token: () => "t" }, peerId: "p", verifier: testVerifier, onLink: () => {} })).toThrow(/ws:\/\//);
    }
  });

  it("retries while nothing listens, and stop() ends the wait", async () => {
    const server = await setup();
    const port = server.port;
    await server.close();
    const { dialer, retries, until } = dial(`ws://127.0.0.1:${port}/sync`);
    await until(() => retries.length >= 3);
    await dialer.stop();
    expect(dialer.state).toBe("stopped");
    expect(dialer.nextRetryAt).toBeUndefined();
  });
});
