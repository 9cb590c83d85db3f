import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic-file.js";
import { OrdoError } from "../util/errors.js";

/** Where a node keeps its connectors' settings and credentials: its own data directory, mode 0600. */
export const CONNECTORS_FILE = "connectors.json";

export interface CanvasSettings {
  url: string;
  token: string;
  /** The Canvas course id, as a string (ids can pass 2^53). */
  courseId: string;
}

export interface DiscourseSettings {
  url: string;
  apiKey: string;
  username: string;
  categoryId: string;
  /** The course document the category is the forum of. */
  course: string;
  /** The secret set on the Discourse webhook that points at this node; without one, webhooks are refused. */
  webhookSecret?: string;
}

export interface ConnectorSettings {
  canvas?: CanvasSettings;
  discourse?: DiscourseSettings;
}

/**
 * The node's connector settings. Credentials live here only: never in a document (documents
 * replicate to every peer) and never in a log line. The file is written atomically with mode
 * 0600, and one readable by others is refused.
 */
export function readConnectorSettings(dataDir: string): ConnectorSettings {
  const path = join(dataDir, CONNECTORS_FILE);
  if (!existsSync(path)) return {};
  if ((statSync(path).mode & 0o077) !== 0) throw new OrdoError("ORDO_INSECURE_CONFIG", `${path} holds credentials but others may read it; run chmod 600 on it`);
  try {
    return JSON.parse(readFileSync(path, "utf8")) as ConnectorSettings;
  } catch (cause) {
    throw new OrdoError("ORDO_BAD_CONFIG", `${path} is not valid JSON`, { cause });
  }
}

export function writeConnectorSettings(dataDir: string, settings: ConnectorSettings): void {
  writeFileAtomic(join(dataDir, CONNECTORS_FILE), `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
}

/** Settings for printing: credentials replaced by a mark. */
export function redacted(settings: ConnectorSettings): Record<string, unknown> {
  return {
    ...(settings.canvas ? { canvas: { ...settings.canvas, token: "(set)" } } : {}),
    ...(settings.discourse
      ? { discourse: { ...settings.discourse, apiKey: "(set)", ...(settings.discourse.webhookSecret !== undefined ? { webhookSecret: "(set)" } : {}) } }
      : {}),
  };
}
