import { Presets, SingleBar } from "cli-progress";
import type { RemoteSystem } from "../connectors/connector-tables.js";

/** Where the bar draws: a terminal's stderr, or a stream tests hand in. */
export interface ProgressStream extends NodeJS.WritableStream {
  isTTY?: boolean;
  columns?: number;
}

export interface SyncProgress {
  onProgress: (done: number, stage: string) => void;
  stop: () => void;
}

/**
 * The bar `ordo sync` draws while it pulls, for a person at a terminal only (scripts and
 * `--json` get the summary alone). A pull scans listings whose length it learns as it goes, so
 * the bar's length is the number of objects the last sync mapped; it grows if the course did.
 */
export function syncProgress(system: RemoteSystem, expected: number, stream: ProgressStream, enabled: boolean): SyncProgress {
  if (!enabled || !stream.isTTY) return { onProgress: () => {}, stop: () => {} };
  const format = expected > 0 ? `${system} {bar} {value}/{total} objects · {stage}` : `${system} {value} objects · {stage}`;
  const bar = new SingleBar({ stream, format, hideCursor: true, clearOnComplete: false }, Presets.shades_classic);
  let started = false;
  return {
    onProgress: (done, stage) => {
      if (!started) bar.start(Math.max(expected, 1), 0, { stage });
      started = true;
      if (done > bar.getTotal()) bar.setTotal(done);
      bar.update(done, { stage: stage.replace(/_/g, " ") });
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
