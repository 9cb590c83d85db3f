import * as A from "@automerge/automerge";
import { once } from "node:events";
import type { IncomingMessage } from "node:http";
import { WebSocket } from "ws";
import { newDocUrl } from "../../src/crdt/ids.js";
import { CloseCode } from "../../src/net/close-codes.js";
import { DEFAULT_LINK_LIMITS } from "../../src/net/limits.js";
import { encodeFrame } from "../../src/net/wire.js";
import { demoUser } from "../../src/testing/principals.js";
import { createRandom } from "../../src/util/random.js";
import { HonestNodes } from "../fuzz/honest-nodes.js";
import { RawConnection } from "../fuzz/raw-connection.js";
import { RelayProcess } from "../fuzz/relay-process.js";
import { binaryFrame } from "../fuzz/ws-frame.js";
import { check, runCases, type Suite } from "../suite.js";

/**
 * Abuse limits: a relay in its own process meets the abuses each limit is there for, one a
 * case in turn: a flood of requests for random document ids, a frame one byte over the cap,
 * a handshake dribbled out too slowly, and more connections from one address than it takes.
 * Each must hit its limit, and after each the relay is the same process, healthy, logged no
 * error, and still carries a teacher's edit to a student over the links they started with.
 * (A client that stops reading is dropped at `maxBufferedBytes`: tests/net/hardening shows it
 * with a small cap, as this relay's course is too small to fill the 8 MiB one.)
 */
export const abuseLimits: Suite = {
  name: "abuse-limits",
  summary: "request floods, an oversize frame, a slow handshake and a connection flood each hit their limit; the relay stays up and serves the others",
  unit: "iterations",
  sizes: { test: 4, ci: 20, large: 100 },
  async run(options) {
    const relay = await RelayProcess.start();
    let honest: HonestNodes | undefined;
    try {
      honest = await HonestNodes.start(relay);
      const nodes = honest;
      return await runCases(options, "iteration", async (n) => {
        const abuse = ABUSES[n % ABUSES.length]!;
        options.log(`iteration ${n}: ${abuse.name}`);
        await abuse.run(relay, createRandom(n));
        const gone = relay.gone();
        check(gone === undefined, gone ?? "");
        check(await relay.healthy(), "/healthz did not answer 200 after the abuse");
        const errors = relay.newErrorLines();
        check(errors.length === 0, `the relay logged an error: ${errors[0]}`);
        const lost = (await nodes.editReachesStudent()) ?? nodes.linksDropped();
        check(lost === undefined, `after ${abuse.name}: ${lost}`);
      });
    } finally {
      await honest?.stop();
      await relay.stop();
    }
  },
};

interface Abuse {
  name: string;
  run(relay: RelayProcess, random: () => number): Promise<void>;
}

const ABUSES: Abuse[] = [
  {
    name: "a flood of requests for random document ids",
    async run(relay, random) {
      const connection = await joined(relay, `flood-${Math.floor(random() * 1e9)}`);
      // What a client that has none of a document asks with: a valid first sync message.
      const [, ask] = A.generateSyncMessage(A.init(), A.initSyncState());
      // Three bursts' worth in one write: faster than the bucket refills, whatever the machine.
      const count = 3 * DEFAULT_LINK_LIMITS.messageBurst;
      const frames = Array.from({ length: count }, () =>
        binaryFrame(encodeFrame({ type: "request", senderId: connection.peerId, targetId: relay.peerId, documentId: newDocUrl().slice("automerge:".length), data: ask! } as never)),
      );
      connection.write(Buffer.concat(frames));
      const settled = await connection.settle(15_000);
      check(settled.state === "closed" && (settled.code === CloseCode.rateLimited || settled.code === CloseCode.tooManyDocuments), `the flood was not stopped by a limit (${describe(settled)})`);
    },
  },
  {
    name: "a frame one byte over the cap",
    async run(relay, random) {
      const connection = await joined(relay, `oversize-${Math.floor(random() * 1e9)}`);
      connection.write(binaryFrame(new Uint8Array(DEFAULT_LINK_LIMITS.maxFrameBytes + 1)));
      const settled = await connection.settle(15_000);
      check(settled.state === "closed" && settled.code === 1009, `a frame over the cap was not refused with 1009 (${describe(settled)})`);
    },
  },
  {
    name: "a join dribbled out slower than the handshake allows",
    async run(relay, random) {
      const connection = await RawConnection.open(relay.port, relay.token(demoUser("student", 1), "student"));
      const join = binaryFrame(encodeFrame({ type: "join", senderId: `slow-${Math.floor(random() * 1e9)}`, peerMetadata: {}, supportedProtocolVersions: ["1"] }));
      const started = Date.now();
      for (const byte of join) {
        if (connection.closed) break;
        connection.write(Uint8Array.of(byte));
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      await connection.until(() => connection.closed, DEFAULT_LINK_LIMITS.handshakeTimeoutMs + 5_000);
      check(connection.closed && connection.closeCode === CloseCode.handshakeTimeout, `a dribbled join was not cut off by the handshake timeout (closed: ${connection.closed}, code ${String(connection.closeCode)})`);
      check(Date.now() - started < DEFAULT_LINK_LIMITS.handshakeTimeoutMs + 5_000, "the handshake timeout took too long");
    },
  },
  {
    name: "more connections from one address than the relay takes",
    async run(relay) {
      const cap = DEFAULT_LINK_LIMITS.maxConnectionsPerAddress;
      const token = relay.token(demoUser("student", 2), "student");
      // Upgrades that never join, held open: the honest nodes' two links count from this address too.
      const statuses = await Promise.all(Array.from({ length: cap + 60 }, () => upgrade(relay.port, token, "127.0.0.1")));
      const admitted = statuses.filter((s) => s.status === 101);
      const refused = statuses.filter((s) => s.status === 429).length;
      check(admitted.length <= cap, `${admitted.length} connections admitted from one address, over the cap of ${cap}`);
      check(refused >= 60, `only ${refused} of ${statuses.length} upgrades refused with 429`);
      // Another address is served meanwhile.
      const elsewhere = await upgrade(relay.port, token, "127.0.0.2");
      check(elsewhere.status === 101, `an upgrade from another address got ${elsewhere.status} during the flood`);
      elsewhere.socket?.terminate();
      for (const { socket } of admitted) socket?.terminate();
      // Once they are closed, the address is admitted again.
      let again = 0;
      for (let attempt = 0; attempt < 50 && again !== 101; attempt++) {
        const next = await upgrade(relay.port, token, "127.0.0.1");
        again = next.status;
        next.socket?.terminate();
        if (again !== 101) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      check(again === 101, `the address was still refused (${again}) after its connections closed`);
    },
  },
];

/** An authenticated connection that has joined as a student's device would. */
async function joined(relay: RelayProcess, peerId: string): Promise<RawConnection & { peerId: string }> {
  const connection = await RawConnection.open(relay.port, relay.token(demoUser("student", 1), "student"));
  await connection.join({ senderId: peerId, peerMetadata: {} });
  return Object.assign(connection, { peerId });
}

/** The status of an upgrade from `localAddress`, and the socket if it was accepted. */
async function upgrade(port: number, token: string, localAddress: string): Promise<{ status: number; socket?: WebSocket }> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/sync`, { headers: { authorization: `Bearer ${token}` }, localAddress });
  socket.on("error", () => undefined);
  const outcome = await Promise.race([
    once(socket, "open").then(() => 101),
    once(socket, "unexpected-response").then(([, response]) => {
      (response as IncomingMessage).resume();
      return (response as IncomingMessage).statusCode ?? 0;
    }),
    once(socket, "close").then(() => 0),
  ]);
  if (outcome !== 101) socket.terminate();
  return outcome === 101 ? { status: 101, socket } : { status: outcome };
}

function describe(settled: { state: string; code?: number | undefined }): string {
  return settled.state === "closed" ? `closed with ${String(settled.code)}` : settled.state;
}
