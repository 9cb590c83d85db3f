import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { OrdoError } from "../../util/errors.js";
import type { CommonOptions } from "../cli-kit.js";

/** Commands that read files directly check the directory themselves, with the engine's wording. */
export function requireDataDir(options: CommonOptions): void {
  const dir = resolve(options.data);
  if (!existsSync(dir)) throw new OrdoError("ORDO_NO_DATA", `no data directory at ${dir} (run \`ordo init\` first)`);
}
