import { EventEmitter } from "node:events";
import type { DocMessage, LinkStats, PeerLink, PeerLinkEvents } from "../net/peer-link.js";
import type { Principal } from "../net/principal.js";
import { COLLECTION_METADATA } from "../replication/collection-sync.js";

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
    /** What the other end announced when it joined. */
    readonly remoteMetadata: Readonly<Record<string, unknown>>,
  ) {
    super();
  }

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
/** What an Ordo node of this version announces when it joins. */
const ORDO_METADATA = { ordoSeq: true, ...COLLECTION_METADATA };

export function memoryLinkPair(
  a: { peerId: string; principal: Principal; metadata?: Record<string, unknown> },
  b: { peerId: string; principal: Principal; metadata?: Record<string, unknown> },
  faults: LinkFaults = {},
): { atA: PeerLink; atB: PeerLink } {
  const atA = new MemoryLink("outbound", a.peerId, b.peerId, b.principal, faults, b.metadata ?? ORDO_METADATA);
  const atB = new MemoryLink("inbound", b.peerId, a.peerId, a.principal, faults, a.metadata ?? ORDO_METADATA);
  atA.other = atB;
  atB.other = atA;
  return { atA, atB };
}
