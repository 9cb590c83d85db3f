/**
 * What every reliability suite is: a name, what its size counts, its sizes, and a run that
 * tries that many cases and tells how many passed. `npm run reliability` runs every suite at
 * CI size; `npm test` runs each at its test size (tests/reliability); a long run passes a
 * larger size on the command line.
 */
export interface Suite {
  name: string;
  /** One line: what the suite attacks and what must hold. */
  summary: string;
  /** What a case is, and the command-line flag that sets how many: `--seeds 200`. */
  unit: "seeds" | "iterations" | "frames";
  sizes: {
    /** In `npm test`: seconds, not minutes. */
    test: number;
    /** `npm run reliability` without a size. */
    ci: number;
    /** A long run, recorded in RELIABILITY.md. */
    large: number;
  };
  /** Tries `count` cases (case `first` on, so a failure replays alone with `--from`). */
  run(options: RunOptions): Promise<SuiteResult>;
}

export interface RunOptions {
  count: number;
  /** The first case: a failure names its case, and `--from N --seeds 1` replays it. */
  first: number;
  /** With `--duration`: no case starts after this moment (`performance.now()`), though the first always runs. */
  until?: number;
  /** Progress lines (the runner prints them; tests drop them). */
  log: (line: string) => void;
}

export interface SuiteResult {
  passed: number;
  failed: number;
  /** One line per failed case, naming the case so it can be replayed. */
  failures: string[];
}

/** Runs `count` cases one after another, each a thrown error if it fails, and counts them. */
export async function runCases(options: RunOptions, unit: string, runCase: (n: number) => Promise<void>): Promise<SuiteResult> {
  const result: SuiteResult = { passed: 0, failed: 0, failures: [] };
  for (let n = options.first; n < options.first + options.count && !timeIsUp(options, n); n++) {
    try {
      await runCase(n);
      result.passed++;
    } catch (error) {
      result.failed++;
      const line = `${unit} ${n}: ${error instanceof Error ? error.message : String(error)}`;
      result.failures.push(line);
      options.log(`FAILED ${line}`);
    }
  }
  return result;
}

/** Whether case `n` should not start: the run's `--duration` has passed (the first case always runs). */
export function timeIsUp(options: RunOptions, n: number): boolean {
  return n > options.first && options.until !== undefined && performance.now() >= options.until;
}

/** Throws with `message` unless `condition` holds: a suite's check, which fails only its case. */
export function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** The closing line every suite prints. */
export function closingLine(result: SuiteResult): string {
  return `${result.passed} passed, ${result.failed} failed`;
}
