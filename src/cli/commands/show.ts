import type { Command } from "commander";
import { documentIdOf, isVerifiedDocUrl, type DocUrl } from "../../crdt/ids.js";
import { OrdoError } from "../../util/errors.js";
import { command, printJson, withEngine, type CommonOptions } from "../cli-kit.js";

export function registerShow(program: Command): void {
  command(program, "show", "print one document: its fields, its index record and any conflicting values")
    .argument("<doc-url>", "the document's URL (automerge:...)")
    .action(async (url: string, options: CommonOptions) => {
      if (!isVerifiedDocUrl(url)) throw new OrdoError("ORDO_USAGE", `not a document URL: ${url}`);
      const shown = await withEngine(options, async (engine) => {
        const [record] = (await engine.docs.records({ includeDeleted: true })).filter((r) => r.id === documentIdOf(url as DocUrl));
        if (!record) throw new OrdoError("ORDO_NOT_FOUND", `no document ${url}`);
        const snapshot = await engine.docs.snapshot(url as DocUrl);
        return { url, record, entity: snapshot?.entity ?? null, conflicts: snapshot?.conflicts ?? {} };
      });
      // Documents are nested; JSON is the readable form for people too.
      printJson(options.json ? shown : { ...shown.entity, _record: shown.record, _conflicts: shown.conflicts });
    });
}
