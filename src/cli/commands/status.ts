import type { Command } from "commander";
import { connectorStatus, unsettledEntities } from "../../connectors/connector-status.js";
import { connectorDb } from "../../connectors/connector-tables.js";
import { command, printResult, withEngine, type CommonOptions } from "../cli-kit.js";
import { askRunningNode } from "../running-node.js";


export function registerStatus(program: Command): void {
  command(program, "status", "what this node holds (documents, projection, quarantine, damage) and, while it runs, how sync stands with each peer").action(async (options: CommonOptions) => {
    // A running node answers for itself: opening its store beside it would only race its writes.
    const running = await askRunningNode(options.data);
    const local = running ? undefined : await withEngine(options, async (engine) => ({ engine: await engine.status(), connectors: await connectorStatus(connectorDb(engine.db)), unsettled: await unsettledEntities(connectorDb(engine.db)) }));
    const status = running?.engine ?? local!.engine;
    const kinds = Object.entries(status.byKind).map(([kind, n]) => `${kind} ${n}`).join(", ");
    const lines = [
      `data:        ${status.dataDir}`,
      `documents:   ${status.documents} (${kinds || "none"})`,
      `deleted:     ${status.deleted}`,
      `quarantined: ${status.quarantined}`,
      `damaged:     ${status.damagedChunks} chunks set aside`,
      `projected:   ${status.projected}, ${status.projectionPending} pending`,
    ];
    if (running) {
      lines.push(`node:        ${running.mode} ${running.peerId} on ${running.listening ?? "-"}, ${running.inSync ? "in sync" : "syncing"}`);
      if (running.relay) lines.push(`relay:       ${running.relay.url} (${running.relay.state})`);
      for (const peer of running.peers) {
        const state = !peer.connected ? "disconnected" : peer.inSync ? "in sync" : `${peer.pendingOut} documents to send, ${peer.pendingIn} to receive`;
        lines.push(`peer:        ${peer.peerId} ${peer.role} ${peer.user} (${peer.direction}): ${state}, last seen ${peer.lastSeen ?? "never"}`);
      }
    } else {
      lines.push("node:        not running");
    }
    const connectors = running ? (running.connectors ?? []) : local!.connectors;
    const unsettled = running ? (running.unsettled ?? []) : local!.unsettled;
    const counts = (record: Record<string, number>) => Object.entries(record).map(([state, n]) => `${n} ${state}`).join(", ") || "none";
    for (const connector of connectors) lines.push(`${`${connector.system}:`.padEnd(13)}documents ${counts(connector.documents)}; outbox ${counts(connector.outbox)}`);
    for (const entity of unsettled) {
      const states = (["canvas", "discourse"] as const).filter((system) => entity[system] === "pending" || entity[system] === "conflict").map((system) => (entity[system] === "pending" ? `pending to ${system}` : `conflict with ${system}`));
      lines.push(`${"unsettled:".padEnd(13)}${entity.doc_url}: ${states.join(", ")}`);
    }
    printResult(options, { ...status, node: running ? { ...running, engine: undefined, connectors: undefined, unsettled: undefined } : null, connectors, unsettled }, lines.join("\n"));
  });
}
