import { InvalidArgumentError, type Command } from "commander";
import type { ConflictStrategy } from "../../connectors/connector-tables.js";
import { connectorDb } from "../../connectors/connector-tables.js";
import { ANY_KIND, DEFAULT_STRATEGY, setStrategy, STRATEGIES } from "../../connectors/sync-base.js";
import { isDocUrl, type DocUrl } from "../../crdt/ids.js";
import { isKind } from "../../crdt/schema/kinds.js";
import type { Engine } from "../../engine.js";
import { OrdoError } from "../../util/errors.js";
import { command, printResult, printRows, withEngine, type CommonOptions } from "../cli-kit.js";

interface StrategyFlags extends CommonOptions {
  course?: string;
  kind?: string;
}

/** `ordo conflicts`: what clashed with Canvas or Discourse and how it was settled; `ordo conflicts strategy`: how to settle it. */
export function registerConflicts(program: Command): void {
  const conflicts = command(program, "conflicts", "every conflict found between this node and Canvas or Discourse, and how it was resolved").action(async (options: CommonOptions) => {
    const rows = await withEngine(options, (engine) => connectorDb(engine.db).selectFrom("remote_conflicts").selectAll().orderBy("detected_at").orderBy("id").execute());
    printRows(options, rows, ["detected_at", "system", "doc_url", "field", "local_value", "remote_value", "strategy", "resolution"]);
  });

  command(conflicts, "strategy", `show or set how conflicts are settled, per course and kind of entity (default ${DEFAULT_STRATEGY})`)
    .argument("[strategy]", STRATEGIES.join(", "), (value: string) => {
      if (!(STRATEGIES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${STRATEGIES.join(", ")}`);
      return value as ConflictStrategy;
    })
    .option("--course <doc-url>", "the course (default: the only course on this node)")
    .option("--kind <kind>", "one kind of entity, e.g. assignment, post (default: every kind)", (value: string) => {
      if (!isKind(value)) throw new InvalidArgumentError("expected a kind of document, e.g. assignment, discussion_topic, post, page, grade");
      return value;
    })
    .action(async (strategy: ConflictStrategy | undefined, _flags: StrategyFlags, self: Command) => {
      // `--data` and `--json` may be given before or after `strategy`: `conflicts` takes them too.
      const options = self.optsWithGlobals<StrategyFlags>();
      await withEngine(options, async (engine) => {
        const db = connectorDb(engine.db);
        if (strategy) {
          const course = await courseOf(engine, options.course);
          const kind = options.kind ?? ANY_KIND;
          await setStrategy(db, course, kind, strategy);
          printResult(options, { course, kind, strategy }, `conflicts over ${kind === ANY_KIND ? "every kind" : kind} in ${course} are now settled by ${strategy}`);
          return;
        }
        const rows = await db.selectFrom("conflict_strategies").selectAll().orderBy("course_url").orderBy("kind").execute();
        printRows(options, rows, ["course_url", "kind", "strategy"]);
      });
    });
}

async function courseOf(engine: Engine, given: string | undefined): Promise<DocUrl> {
  if (given !== undefined) {
    if (!isDocUrl(given)) throw new OrdoError("ORDO_BAD_URL", `${given} is not a document URL (automerge:…)`);
    return given;
  }
  const courses = await engine.docs.records({ kind: "course" });
  if (courses.length === 1) return `automerge:${courses[0]!.id}` as DocUrl;
  throw new OrdoError("ORDO_WHICH_COURSE", `this node holds ${courses.length} courses: say which one with --course <doc-url>`);
}
