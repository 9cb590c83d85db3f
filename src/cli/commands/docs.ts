import { Option, type Command } from "commander";
import { docUrlOf, isVerifiedDocUrl } from "../../crdt/ids.js";
import { KINDS } from "../../crdt/schema/kinds.js";
import { CATALOG_KIND } from "../../crdt/catalog.js";
import { OrdoError } from "../../util/errors.js";
import { command, printResult, printRows, withEngine, type CommonOptions } from "../cli-kit.js";

interface DocsFlags extends CommonOptions {
  kind?: string;
  course?: string;
  deleted?: boolean;
  quarantined?: boolean;
}

export function registerDocs(program: Command): void {
  command(program, "docs", "list the documents this node holds")
    .addOption(new Option("--kind <kind>", "only this kind").choices([...KINDS, CATALOG_KIND]))
    .option("--course <url>", "only this course's documents")
    .option("--deleted", "include deleted documents")
    .option("--quarantined", "only documents that failed validation")
    .action(async (options: DocsFlags) => {
      if (options.course !== undefined && !isVerifiedDocUrl(options.course)) throw new OrdoError("ORDO_USAGE", `--course: not a document URL: ${options.course}`);
      const records = await withEngine(options, (engine) =>
        engine.docs.records({
          kind: options.kind,
          course: options.course as never,
          includeDeleted: options.deleted ?? false,
          status: options.quarantined ? "invalid" : undefined,
        }),
      );
      const rows = records.map((r) => ({ url: docUrlOf(r.id), kind: r.kind, course: r.course, audience: r.audience, status: r.status, deleted: r.deleted, problem: r.problem }));
      if (options.json) printResult(options, rows, "");
      else printRows(options, rows, ["url", "kind", "audience", "status", "deleted", ...(options.quarantined ? ["problem"] : [])]);
    });
}
