import { randomBytes } from "node:crypto";
import { closeSync, fchmodSync, fsyncSync, linkSync, openSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/**
 * Writes `path` so that readers see the old content or the new, never a torn file, and the
 * new survives a power cut: a temp file (created with `mode`, so it is never briefly
 * readable by others), fsync, rename, fsync of the directory. When `exclusive`, an existing
 * file is kept (link instead of rename) and false returned.
 */
export function writeFileAtomic(path: string, text: string, options: { mode?: number; exclusive?: boolean } = {}): boolean {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  let placed = false;
  try {
    const fd = openSync(temp, "wx", options.mode ?? 0o666);
    try {
      // The umask applies to open's mode; a requested mode must hold exactly.
      if (options.mode !== undefined) fchmodSync(fd, options.mode);
      writeFileSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    placed = options.exclusive ? linkUnlessExists(temp, path) : (renameSync(temp, path), true);
  } finally {
    rmSync(temp, { force: true });
  }
  syncDirectory(dirname(path));
  return placed;
}

function linkUnlessExists(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
