import { writeFileSync } from "node:fs";
import { SyncNode } from "../src/node/sync-node.js";

/**
 * Our students' (and teachers') nodes as the memory and soak sections run them: one node per
 * seat, dialing the relay with the seat's token, no discovery and no connectors.
 */

export interface Seat {
  index: number;
  dataDir: string;
  token: string;
}

/** In sync with the relay: the one link is up and both sides have offered everything. */
export function inSync(node: SyncNode): boolean {
  const peers = node.status().peers;
  return peers.length === 1 && peers[0]!.connected && peers[0]!.inSync;
}

export function startSeat(seat: Seat, relayUrl: string): Promise<SyncNode> {
  return SyncNode.start({ dataDir: seat.dataDir, create: true, token: seat.token, relay: relayUrl, discovery: false, connectors: false });
}

/** Writes the ids of every document the node's store holds, one a line: what the stock client of the same student is told to find. */
export async function writeIds(node: SyncNode, file: string, kind?: string): Promise<number> {
  const records = (await node.engine.docs.records()).filter((record) => kind === undefined || record.kind === kind);
  writeFileSync(file, `${records.map((record) => record.id).join("\n")}\n`);
  return records.length;
}
