import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { syncProgress, type ProgressStream } from "../../src/cli/sync-progress.js";

function terminal(isTTY: boolean): { stream: ProgressStream; output: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY, columns: 100 });
  let written = "";
  stream.on("data", (chunk: Buffer) => (written += chunk.toString()));
  return { stream, output: () => written };
}

describe("the ordo sync progress bar", () => {
  it("draws on a terminal: objects done against what the last sync mapped, and the stage", async () => {
    const { stream, output } = terminal(true);
    const progress = syncProgress("canvas", 40, stream, true);
    for (let done = 1; done <= 30; done++) progress.onProgress(done, done < 20 ? "user" : "discussion_topic");
    progress.stop();
    await new Promise((resolve) => setImmediate(resolve));
    expect(output()).toContain("canvas");
    expect(output()).toMatch(/30\/40 objects · discussion topic/);
  });

  it("grows when the course did, and counts alone when nothing was mapped before", async () => {
    const grown = terminal(true);
    const progress = syncProgress("discourse", 2, grown.stream, true);
    for (let done = 1; done <= 5; done++) progress.onProgress(done, "post");
    progress.stop();
    const counting = terminal(true);
    const first = syncProgress("discourse", 0, counting.stream, true);
    first.onProgress(7, "topic");
    first.stop();
    await new Promise((resolve) => setImmediate(resolve));
    expect(grown.output()).toMatch(/5\/5 objects/);
    expect(counting.output()).toMatch(/discourse 7 objects · topic/);
  });

  it("draws nothing for a script, a pipe or --json", async () => {
    const piped = terminal(false);
    syncProgress("canvas", 10, piped.stream, true).onProgress(3, "user");
    const json = terminal(true);
    syncProgress("canvas", 10, json.stream, false).onProgress(3, "user");
    await new Promise((resolve) => setImmediate(resolve));
    expect(piped.output() + json.output()).toBe("");
  });
});
