import type { EngineStatus } from "../engine.js";
import type { LinkStats } from "../net/peer-link.js";
import type { SyncServerMetrics } from "../net/sync-server.js";
import type { PeerStatus } from "../replication/replicator.js";
import { renderMetrics, type Metric } from "./metrics.js";

export interface NodeMetricsInput {
  engine: EngineStatus;
  peers: readonly PeerStatus[];
  server: SyncServerMetrics | null;
  /** Traffic of the links open now (the server's totals include closed ones). */
  links: LinkStats;
  now?: number;
}

/** The node's `/metrics`: peers, documents, traffic, refusals and how far behind its peers are. */
export function nodeMetrics(input: NodeMetricsInput): string {
  const { engine, peers, server, links } = input;
  const now = input.now ?? Date.now();
  const gauge = (name: string, help: string, value: number): Metric => ({ name, help, type: "gauge", samples: [{ value }] });
  const counter = (name: string, help: string, value: number): Metric => ({ name, help, type: "counter", samples: [{ value }] });
  // Lag: the longest any connected peer has had changes queued and not yet sent.
  const lagSeconds = Math.max(0, ...peers.filter((p) => p.pendingOut > 0 && p.pendingSince).map((p) => (now - Date.parse(p.pendingSince!)) / 1000));
  return renderMetrics([
    gauge("ordo_peers_connected", "Peers connected now.", peers.filter((p) => p.connected).length),
    { name: "ordo_peers_in_sync", help: "Connected peers in sync, by role.", type: "gauge", samples: roleCounts(peers.filter((p) => p.inSync)) },
    gauge("ordo_documents", "Documents in the store (not deleted).", engine.documents),
    gauge("ordo_documents_quarantined", "Documents kept but not projected because they fail validation.", engine.quarantined),
    gauge("ordo_damaged_chunks", "Stored chunks set aside as damaged.", engine.damagedChunks),
    gauge("ordo_projection_pending", "Documents changed but not yet projected.", engine.projectionPending),
    counter("ordo_bytes_in_total", "Bytes received from peers.", server ? Math.max(server.bytesIn, links.bytesIn) : links.bytesIn),
    counter("ordo_bytes_out_total", "Bytes sent to peers.", server ? Math.max(server.bytesOut, links.bytesOut) : links.bytesOut),
    counter("ordo_messages_refused_total", "Frames refused as not the protocol (each closed its connection).", server?.messagesRefused ?? 0),
    {
      name: "ordo_connections_refused_total",
      help: "Connections refused at the upgrade, by reason.",
      type: "counter",
      samples: Object.entries(server?.refused ?? {}).map(([reason, value]) => ({ labels: { reason }, value })),
    },
    gauge("ordo_documents_pending_out", "Documents with changes queued for peers, summed over peers.", peers.reduce((sum, p) => sum + p.pendingOut, 0)),
    gauge("ordo_documents_pending_in", "Documents where a peer has changes this node lacks, summed over peers.", peers.reduce((sum, p) => sum + p.pendingIn, 0)),
    gauge("ordo_documents_unsettled", "Documents whose heads differ from a peer's, summed over peers.", peers.reduce((sum, p) => sum + p.unsettled, 0)),
    gauge("ordo_sync_lag_seconds", "How long the oldest queued change has waited to be sent.", lagSeconds),
  ]);
}

function roleCounts(peers: readonly PeerStatus[]): Array<{ labels: Record<string, string>; value: number }> {
  const counts = new Map<string, number>();
  for (const peer of peers) counts.set(peer.role, (counts.get(peer.role) ?? 0) + 1);
  return [...counts].map(([role, value]) => ({ labels: { role }, value }));
}
