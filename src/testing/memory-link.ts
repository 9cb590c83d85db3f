import { EventEmitter } from "node:events";
import type { DocMessage, LinkStats, PeerLink, PeerLinkEvents } from "../net/peer-link.js";
import type { Principal } from "../net/principal.js";

let nextId = 1;

/** Faults a test can inject between the two ends: each message may be dropped or duplicated. */
export interface LinkFaults {
  shouldDrop?: () => boolean;
  shouldDuplicate?: () => boolean;
}

class MemoryLink extends EventEmitter<PeerLinkEvents> implements PeerLink {
  readonly id = nextId++;
  other!: MemoryLink;
  #closed = false;
  readonly #stats: LinkStats = { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, documentsNamed: 0 };

  constructor(
    readonly direction: "inbound" | "outbound",
    readonly localPeerId: string,
    readonly remotePeerId: string,
    readonly principal: Principal,
    readonly faults: LinkFaults,
  ) {
    super();
  }

  // Both ends are Ordo peers.
  readonly remoteMetadata = { ordoSeq: true };

  get closed(): boolean {
    return this.#closed;
  }

  send(message: DocMessage): void {
    if (this.#closed) return;
    this.#stats.messagesOut++;
    if (this.faults.shouldDrop?.()) return;
    const copies = this.faults.shouldDuplicate?.() ? 2 : 1;
    // Delivered on a later turn, in order, as a socket would.
    for (let i = 0; i < copies; i++) setImmediate(() => this.other.#deliver(message));
  }

  #deliver(message: DocMessage): void {
    if (this.#closed) return;
    this.#stats.messagesIn++;
    this.emit("message", message);
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.emit("close", { code, reason });
    this.other.close(code, reason);
  }

  stats(): LinkStats {
    return { ...this.#stats };
  }
}

/**
 * Two ends of an in-process link between peers `a` and `b`, each end carrying the other
 * side's principal, as an authenticated transport would. For tests of the sync logic only:
 * tests of the wire use real WebSockets.
 */
export function memoryLinkPair(
  a: { peerId: string; principal: Principal },
  b: { peerId: string; principal: Principal },
  faults: LinkFaults = {},
): { atA: PeerLink; atB: PeerLink } {
  const atA = new MemoryLink("outbound", a.peerId, b.peerId, b.principal, faults);
  const atB = new MemoryLink("inbound", b.peerId, a.peerId, a.principal, faults);
  atA.other = atB;
  atB.other = atA;
  return { atA, atB };
}
