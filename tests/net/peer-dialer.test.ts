import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { CloseCode } from "../../src/net/close-codes.js";
import type { PeerLink } from "../../src/net/peer-link.js";
import {
  PeerDialer,
  type PeerDialerOptions,
  type RetryScheduled,
} from "../../src/net/peer-dialer.js";
import { backoffDelay, DEFAULT_BACKOFF } from "../../src/net/backoff.js";
import type { WsLink } from "../../src/net/ws-link.js";
import { captureLogger, DOC_A, serversPerTest, SERVER_PEER, startServer, testVerifier, type TestServer } from "./net-helpers.js";

const { setup, cleanups } = serversPerTest();

/** A dialer whose links and retries are recorded. */
function dial(url: string, options: Partial<PeerDialerOptions> = {}) {
  const links: PeerLink[] = [];
  const retries: RetryScheduled[] = [];
  const dialer = new PeerDialer({
    url,
    token: "ok.dana.student",
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
    expect(link.principal).toMatchObject({ user: "relay", role: "node" });
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

  it("refuses a server without a valid token (unauthenticated) and keeps retrying", async () => {
    for (const metadata of [() => ({}), () => ({ ordoToken: "forged" })]) {
      const server = await setup({ metadata });
      const serverLink = server.nextLink();
      const { dialer, retries, until } = dial(server.url);
      expect((await once(await serverLink, "close"))[0]).toMatchObject({ code: CloseCode.unauthenticated });
      await until(() => retries.length >= 2);
      expect(dialer.link).toBeUndefined();
      await dialer.stop();
    }
  });

  it("logs a 401 as such and retries, picking up a renewed token", async () => {
    const server = await setup();
    const logger = captureLogger();
    let token = "expired-or-bad";
    const { dialer, retries, until } = dial(server.url, { token: () => token, logger });
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
      expect(() => new PeerDialer({ url, token: "t", peerId: "p", metadata: () => ({}), verifier: testVerifier, onLink: () => {} })).toThrow(/ws:\/\//);
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
