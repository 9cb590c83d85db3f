import { InvalidArgumentError, type Command } from "commander";
import { seedDemoCourse } from "../../demo/demo-course.js";
import { command, printResult, withEngine, type CommonOptions } from "../cli-kit.js";

/** Parses a whole number for a flag, refusing anything else with commander's one-line error. */
export function wholeNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError("expected a whole number");
  return n;
}

interface DemoFlags extends CommonOptions {
  teachers: number;
  students: number;
  assignments: number;
  topics: number;
  seed: number;
}

export function registerDemo(program: Command): void {
  command(program, "demo", "seed a realistic demo course (the same course every time for the same flags)")
    .option("--teachers <n>", "teachers", wholeNumber, 2)
    .option("--students <n>", "students", wholeNumber, 30)
    .option("--assignments <n>", "assignments, each with a submission per student", wholeNumber, 10)
    .option("--topics <n>", "discussion topics, each with threaded posts", wholeNumber, 3)
    .option("--seed <n>", "seed for names, texts and scores", wholeNumber, 1)
    .action(async (options: DemoFlags) => {
      const summary = await withEngine(options, async (engine) => {
        const result = await seedDemoCourse(engine.docs, options);
        await engine.whenProjected();
        return result;
      });
      const kinds = Object.entries(summary.byKind).map(([kind, n]) => `${n} ${kind}`).join(", ");
      printResult(options, summary, `seeded ${summary.course}: ${summary.documents} documents (${kinds})`);
    });
}
