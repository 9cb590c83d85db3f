import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ConnectorStatus, UnsettledEntity } from "../connectors/connector-status.js";
import type { EngineStatus } from "../engine.js";
import type { NodeStatus } from "../node/sync-node.js";
import { NODE_URL_FILE } from "./commands/serve.js";

/** What a running node's `/status` answers. */
export type RunningStatus = NodeStatus & { engine: EngineStatus; connectors?: ConnectorStatus[]; unsettled?: UnsettledEntity[] };

/** The `/status` of the node running on this data directory, if one is (it leaves its URL there). */
export async function askRunningNode(dataDir: string): Promise<RunningStatus | undefined> {
  let url: string;
  try {
    url = readFileSync(join(resolve(dataDir), NODE_URL_FILE), "utf8").trim();
  } catch {
    return undefined;
  }
  try {
    const response = await fetch(`${url}/status`, { signal: AbortSignal.timeout(2_000) });
    return response.ok ? ((await response.json()) as RunningStatus) : undefined;
  } catch {
    // A stale file from a node that did not stop cleanly.
    return undefined;
  }
}
