/**
 * `npm run reliability`: every suite at CI size, one after another, each ending with
 * `N passed, N failed`. `npm run reliability -- --suite NAME --seeds|--iterations|--frames N`
 * runs one suite at another size; `--duration S` runs each chosen suite for S seconds (no
 * case starts after that; with a size too, whichever ends first). `--from N` starts at case N,
 * so `--from 17 --seeds 1` replays the case a failure named. Exits 1 if any case failed, 2 on
 * a wrong flag.
 */
import { parseArgs } from "node:util";
import { SUITES } from "./suites/index.js";
import { closingLine, type Suite } from "./suite.js";

const USAGE = `usage: npm run reliability [-- --suite NAME] [--seeds N | --iterations N | --frames N] [--duration SECONDS] [--from N]
suites: ${SUITES.map((suite) => suite.name).join(", ")}`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function positive(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1) fail(`--${flag} takes a whole number of at least 1, not ${JSON.stringify(text)}`);
  return Number(text);
}

let parsed;
try {
  parsed = parseArgs({
    options: { suite: { type: "string", multiple: true }, seeds: { type: "string" }, iterations: { type: "string" }, frames: { type: "string" }, duration: { type: "string" }, from: { type: "string" } },
    strict: true,
    allowPositionals: false,
  }).values;
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}

const chosen: Suite[] = (parsed.suite ?? []).map((name) => SUITES.find((suite) => suite.name === name) ?? fail(`no suite named ${JSON.stringify(name)}`));
const suites = chosen.length > 0 ? chosen : SUITES;
const sizes = { seeds: positive("seeds", parsed.seeds), iterations: positive("iterations", parsed.iterations), frames: positive("frames", parsed.frames) };
for (const [unit, size] of Object.entries(sizes)) {
  if (size !== undefined && !suites.some((suite) => suite.unit === unit)) fail(`--${unit} sizes none of the suites chosen (${suites.map((s) => `${s.name}: --${s.unit}`).join(", ")})`);
}
const first = positive("from", parsed.from) ?? 1;
const durationS = positive("duration", parsed.duration);

let failed = 0;
for (const suite of suites) {
  // A duration alone sets no size: the suite runs cases until the time is up.
  const count = sizes[suite.unit] ?? (durationS !== undefined ? Number.MAX_SAFE_INTEGER : suite.sizes.ci);
  const started = performance.now();
  const until = durationS !== undefined ? started + durationS * 1000 : undefined;
  const size = count === Number.MAX_SAFE_INTEGER ? `${durationS} s` : `${count} ${suite.unit}${until !== undefined ? `, at most ${durationS} s` : ""}`;
  process.stdout.write(`== ${suite.name}: ${suite.summary} (${size})\n`);
  const result = await suite.run({ count, first, until, log: (line) => process.stdout.write(`   ${line}\n`) });
  failed += result.failed;
  process.stdout.write(`${suite.name}: ${closingLine(result)} (${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
}
process.exit(failed > 0 ? 1 : 0);
