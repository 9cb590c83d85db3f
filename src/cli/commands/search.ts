import type { Command } from "commander";
import { isVerifiedDocUrl, type DocUrl } from "../../crdt/ids.js";
import { searchText } from "../../projection/queries.js";
import { OrdoError } from "../../util/errors.js";
import { command, printRows, withEngine, type CommonOptions } from "../cli-kit.js";
import { wholeNumber } from "./demo.js";

interface SearchFlags extends CommonOptions {
  course?: string;
  limit: number;
  offset: number;
}

export function registerSearch(program: Command): void {
  command(program, "search", "full-text search over titles and bodies, best matches first")
    .argument("<words>", "the words to look for")
    .option("--course <url>", "only this course")
    .option("--limit <n>", "results per page", wholeNumber, 20)
    .option("--offset <n>", "results to skip", wholeNumber, 0)
    .action(async (words: string, options: SearchFlags) => {
      if (options.course !== undefined && !isVerifiedDocUrl(options.course)) throw new OrdoError("ORDO_USAGE", `--course: not a document URL: ${options.course}`);
      const hits = await withEngine(options, (engine) =>
        searchText(engine.db, words, { courseUrl: options.course as DocUrl | undefined, limit: options.limit, offset: options.offset }),
      );
      printRows(options, hits as unknown as Array<Record<string, unknown>>);
    });
}
