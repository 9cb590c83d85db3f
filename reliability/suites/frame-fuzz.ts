import { Authority } from "../../src/net/authority.js";
import { demoUser } from "../../src/testing/principals.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";
import { createRandom } from "../../src/util/random.js";
import { closingLine, timeIsUp, type RunOptions, type Suite, type SuiteResult } from "../suite.js";
import { runAttack, type Attack, type Credential } from "../fuzz/attack-runner.js";
import { FUZZ_STUDENT, loadFixtures } from "../fuzz/corpus.js";
import { HonestNodes } from "../fuzz/honest-nodes.js";
import { RelayProcess } from "../fuzz/relay-process.js";

/** Each case: one frame that breaks the framing, then this many mutated messages, each on its own connection. */
const MESSAGES_PER_FRAME = 5;
/** Connections under attack at once: enough to keep the relay busy on a 2-core machine. */
const CONCURRENCY = 16;
/** Cases between checks that the relay is the same process, healthy, and still syncs the honest nodes. */
const CHECK_EVERY = 2_000;
/**
 * How much the relay's resident memory may grow once warm (after the first CHECK_EVERY
 * frames). Everything a connection may cost is capped (a 4 MiB frame, 10,000 CBOR items,
 * 16 connections in flight: tens of MB at the worst moment), so a relay that frees what
 * refused connections held stays flat; measured, it stays within 15 MB from 2,000 to 10,000
 * frames. A leak of 3 KB per connection (60,000 of them at CI size) fails this.
 */
const RSS_GROWTH_BOUND = 150 * 1024 * 1024;
/**
 * Warming up, V8's heap and the allocator grow to their working size: about 150 MB in the
 * first 2,000 frames, measured. From start to end the relay may grow by that and the bound above.
 */
const RSS_WARMUP_ALLOWANCE = 150 * 1024 * 1024;

/**
 * Frame fuzz: a running relay, in its own process, gets frames that break WebSocket framing
 * (reserved opcodes, no mask, RSV bits, lengths that lie, oversize and fragmented frames,
 * invalid UTF-8) and mutated protocol messages (real join, request, sync and collection
 * messages with damaged bytes, fields of every wrong shape, hand-made CBOR with false
 * lengths, tags and deep nesting, damaged Automerge sync messages and saved documents),
 * before and after an authenticated join. Each must be refused by closing its connection
 * alone, or read past; the relay's pid never changes, two honest nodes keep syncing through
 * it over their first links, and its memory stays bounded.
 */
export const frameFuzz: Suite = {
  name: "frame-fuzz",
  summary: `bad frames and ${MESSAGES_PER_FRAME} mutated messages per frame at a relay process, before and after the join: each closes only its connection, the pid stays, honest nodes keep syncing, memory stays bounded`,
  unit: "frames",
  sizes: { test: 300, ci: 10_000, large: 100_000 },
  run: runFuzz,
};

async function runFuzz(options: RunOptions): Promise<SuiteResult> {
  const started = performance.now();
  const relay = await RelayProcess.start();
  const keyDir = makeTempDir("ordo-fuzz-key-");
  let honest: HonestNodes | undefined;
  try {
    honest = await HonestNodes.start(relay);
    const fixtures = await loadFixtures(honest.teacher.engine.docs, relay.peerId);
    const credentials = fuzzCredentials(relay, Authority.open(keyDir.dir));
    const startRss = relay.rssBytes();
    let warmRss: number | undefined;
    options.log(`relay pid ${relay.pid} on port ${relay.port}, ${mb(startRss)} resident; ready in ${seconds(started)}`);
    const failures = new Map<number, string[]>();
    const fail = (n: number, line: string) => failures.set(n, [...(failures.get(n) ?? []), line]);
    const last = options.first + options.count - 1;
    let stoppedAt: number | undefined;
    /** The last frame run: `last`, unless the relay went or the run's `--duration` ended it sooner. */
    let ranTo = options.first - 1;
    /** How the relay answered the attacks, by close code: a run that only ever sees one code tests little. */
    const answers = new Map<string, number>();

    for (let from = options.first; from <= last && stoppedAt === undefined && !timeIsUp(options, from); from += CHECK_EVERY) {
      const to = Math.min(last, from + CHECK_EVERY - 1);
      ranTo = to;
      await runCases(from, to, async (n) => {
        for (const attack of attacksOf(n, credentials)) {
          const { answer, problem } = await runAttack(relay.port, fixtures, attack);
          answers.set(answer, (answers.get(answer) ?? 0) + 1);
          if (problem !== undefined) fail(n, `${attack.senderId} ${problem}`);
        }
      });
      for (const line of relay.newErrorLines()) fail(caseNamedIn(line) ?? to, `the relay logged an error: ${line.slice(0, 400)}`);
      const gone = relay.gone();
      if (gone !== undefined) {
        fail(to, `${gone}; its log ends: ${relay.logTail()}`);
        stoppedAt = to;
        break;
      }
      const problem = (await relay.healthy()) ? await honest.editReachesStudent() : "the relay's /healthz does not answer 200";
      if (problem !== undefined) fail(to, `after frames ${from}-${to}: ${problem}`);
      warmRss ??= relay.rssBytes();
      options.log(`frames ${from}-${to} done in ${seconds(started)}: ${failures.size} failed so far, relay ${mb(relay.rssBytes())} resident`);
    }

    if (stoppedAt === undefined) {
      const endRss = relay.rssBytes();
      if (endRss - (warmRss ?? startRss) > RSS_GROWTH_BOUND) fail(ranTo, `the relay's resident memory grew by ${mb(endRss - (warmRss ?? startRss))} after the first ${CHECK_EVERY} frames (bound ${mb(RSS_GROWTH_BOUND)})`);
      else if (endRss - startRss > RSS_GROWTH_BOUND + RSS_WARMUP_ALLOWANCE) fail(ranTo, `the relay's resident memory grew by ${mb(endRss - startRss)} over the run (bound ${mb(RSS_GROWTH_BOUND + RSS_WARMUP_ALLOWANCE)})`);
    }
    options.log(`answers: ${[...answers.entries()].sort(([, a], [, b]) => b - a).map(([answer, count]) => `${answer} ${count}`).join(", ")}`);
    const result = tally(options, failures, stoppedAt, ranTo);
    const frames = ranTo - options.first + 1;
    options.log(`${closingLine(result)}: ${frames} frames and ${frames * MESSAGES_PER_FRAME} messages in ${seconds(started)}`);
    return result;
  } finally {
    await honest?.stop();
    await relay.stop();
    keyDir.remove();
  }
}

/** Runs cases `from`..`to` with CONCURRENCY of them in flight. */
async function runCases(from: number, to: number, runCase: (n: number) => Promise<void>): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next <= to) await runCase(next++);
    }),
  );
}

/** Case `n`'s attacks: one frame attack, then the message attacks, everything drawn from `n`. */
function attacksOf(n: number, credentials: Credential[]): Attack[] {
  const random = createRandom(n);
  return Array.from({ length: 1 + MESSAGES_PER_FRAME }, (_, i) => ({
    senderId: `fuzz-${n}-${i}`,
    layer: i === 0 ? ("frame" as const) : ("message" as const),
    credential: credentials[Math.floor(random() * credentials.length)]!,
    afterJoin: random() < 0.7,
    // Mostly Ordo peers: a stock peer's join makes the relay offer it every document it may read, which costs
    // the relay several times what an attack does; a quarter of them still covers the stock path.
    sequenced: random() < 0.75,
    seed: Math.floor(random() * 2 ** 32),
  }));
}

/** What fuzz connections authenticate with: a student's and an observer's bearer tokens, and a student's device token. */
function fuzzCredentials(relay: RelayProcess, key: Authority): Credential[] {
  return [
    { name: "student bearer token", token: relay.token(FUZZ_STUDENT, "student") },
    { name: "observer bearer token", token: relay.token(demoUser("student", 2), "observer") },
    { name: "student device token", token: relay.token(FUZZ_STUDENT, "student", key.publicKey), sign: (bytes) => key.sign(bytes) },
  ];
}

/** The case a relay log line is about, from the fuzz peer id it names. */
function caseNamedIn(line: string): number | undefined {
  const match = /fuzz-(\d+)-\d+/.exec(line);
  return match === null ? undefined : Number(match[1]);
}

/** Frames `first` to `ranTo` ran; in a run of a set size, frames after a relay that went count as failed too. */
function tally(options: RunOptions, failures: Map<number, string[]>, stoppedAt: number | undefined, ranTo: number): SuiteResult {
  const last = options.until === undefined ? options.first + options.count - 1 : ranTo;
  const notRun = stoppedAt === undefined ? 0 : last - stoppedAt;
  const lines = [...failures.entries()].sort(([a], [b]) => a - b).map(([n, problems]) => `frame ${n}: ${problems.join("; ")}`);
  if (notRun > 0) lines.push(`frames ${stoppedAt! + 1}-${last}: not run, the relay was gone`);
  for (const line of lines) options.log(`FAILED ${line}`);
  const failed = failures.size + notRun;
  return { passed: last - options.first + 1 - failed, failed, failures: lines };
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MB`;
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}
