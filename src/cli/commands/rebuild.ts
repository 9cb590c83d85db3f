import { SingleBar, Presets } from "cli-progress";
import type { Command } from "commander";
import { command, printResult, withEngine, type CommonOptions } from "../cli-kit.js";

export function registerRebuild(program: Command): void {
  command(program, "rebuild", "drop the projected tables' rows and project every document again").action(async (options: CommonOptions) => {
    // A bar only for a person at a terminal; scripts and --json get the summary alone.
    const bar = process.stderr.isTTY && !options.json ? new SingleBar({ stream: process.stderr, format: "projecting {bar} {value}/{total} documents" }, Presets.shades_classic) : undefined;
    const started = performance.now();
    const result = await withEngine(options, (engine) =>
      engine.rebuild({
        onProgress: ({ done, total }) => {
          if (bar && done === 0) bar.start(total, 0);
          bar?.setTotal(total);
          bar?.update(done);
        },
      }),
    );
    bar?.stop();
    const seconds = (performance.now() - started) / 1000;
    printResult(options, { ...result, seconds }, `rebuilt: ${result.projected} projected, ${result.deleted} deleted, ${result.invalid} quarantined in ${seconds.toFixed(1)} s`);
  });
}
