import { joinProofBytes } from "../../src/net/holder-proof.js";
import { encodeFrame, type ClientOrServerMessage } from "../../src/net/wire.js";
import { createRandom } from "../../src/util/random.js";
import { realMessages, type Fixtures } from "./corpus.js";
import { frameAttack } from "./frame-attacks.js";
import { messageAttack } from "./message-attacks.js";
import { RawConnection, type Settled } from "./raw-connection.js";
import { binaryFrame } from "./ws-frame.js";

/** A token the fuzz connections upgrade with; a key-bound one comes with the key that proves it. */
export interface Credential {
  name: string;
  token: string;
  sign?: (bytes: Uint8Array) => string;
}

/** One attack of a case: who connects, whether it joins first, and what it then writes. */
export interface Attack {
  /** `fuzz-<case>-<attack>`: the relay's log names it, so a logged error points at its case. */
  senderId: string;
  credential: Credential;
  afterJoin: boolean;
  sequenced: boolean;
  layer: "frame" | "message";
  /** Seeds the attack's own draws, so the bytes depend only on the case. */
  seed: number;
}

/** How long the relay gets to answer a ping or close after an attack: it needs milliseconds. */
const SETTLE_MS = 10_000;
/** Close codes that mean the relay itself failed rather than refusing what it was sent. */
const INTERNAL_ERROR = 1011;

/** What one attack came to: how the relay answered it, and what was wrong, if anything. */
export interface AttackOutcome {
  /** `closed <code>`, `read past` (the ping after it was answered), or `failed`. */
  answer: string;
  problem?: string;
}

/**
 * Runs one attack on a fresh connection. It passes if the relay refused it alone (closed
 * the connection, not with an internal error) or read past it (answered the ping after it).
 */
export async function runAttack(port: number, fixtures: Fixtures, attack: Attack): Promise<AttackOutcome> {
  const failed = (problem: string): AttackOutcome => ({ answer: "failed", problem });
  const answered = (settled: Settled): AttackOutcome => ({ answer: settled.state === "closed" ? `closed ${settled.code ?? "without a close frame"}` : "read past" });
  const describe = (what: string, detail: string) => `${attack.layer} attack (${attack.credential.name}, ${attack.afterJoin ? "after" : "before"} the join${attack.sequenced ? ", sequenced" : ""}: ${what}): ${detail}`;
  let connection: RawConnection;
  try {
    connection = await RawConnection.open(port, attack.credential.token);
  } catch (error) {
    return failed(describe("the upgrade", (error as Error).message));
  }
  let what = "the join";
  try {
    const peerMetadata = joinMetadata(attack, connection.challenge);
    if (attack.afterJoin) await connection.join({ senderId: attack.senderId, peerMetadata });
    const random = createRandom(attack.seed);
    const sender = { senderId: attack.senderId, sequenced: attack.sequenced };
    const messages = realMessages(fixtures, sender);
    if (attack.layer === "frame") {
      // Around a message the relay would take: the framing is all that is wrong.
      const carried = attack.afterJoin ? messages[1 + Math.floor(random() * 3)]!.message : { ...messages[0]!.message, peerMetadata };
      const frame = frameAttack(random, encodeFrame(carried as unknown as ClientOrServerMessage));
      what = frame.what;
      connection.write(frame.bytes);
      if (frame.unfinished) {
        const settled = await connection.endAndWait(SETTLE_MS);
        if (settled.state !== "closed") return failed(describe(what, `the relay did not close a connection that ended mid-frame within ${SETTLE_MS} ms`));
        return answered(settled);
      }
    } else {
      // Before the join, the join itself is what gets damaged.
      const message = messageAttack(random, attack.afterJoin ? messages : [{ name: "join", message: { ...messages[0]!.message, peerMetadata } }]);
      what = message.what;
      connection.write(binaryFrame(message.payload));
    }
    const settled = await connection.settle(SETTLE_MS);
    if (settled.state === "timeout") return failed(describe(what, `the relay neither answered a ping nor closed within ${SETTLE_MS} ms`));
    if (settled.state === "closed" && settled.code === INTERNAL_ERROR) return failed(describe(what, "the relay closed with 1011 (internal error): it threw instead of refusing"));
    return answered(settled);
  } catch (error) {
    return failed(describe(what, (error as Error).message));
  } finally {
    connection.destroy();
  }
}

function joinMetadata(attack: Attack, challenge: string): Record<string, unknown> {
  const proof = attack.credential.sign?.(joinProofBytes(challenge, attack.senderId));
  return { ...(attack.sequenced ? { ordoSeq: true, ordoCollection: 2 } : {}), ...(proof === undefined ? {} : { ordoProof: proof }) };
}
