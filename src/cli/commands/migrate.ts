import { Argument, type Command } from "commander";
import { command, printResult, printRows, withEngine, type CommonOptions } from "../cli-kit.js";

export function registerMigrate(program: Command): void {
  command(program, "migrate", "show or move the projection database's schema version")
    .addArgument(new Argument("<action>", "status, up (apply the next migration) or down (revert the last)").choices(["status", "up", "down"]))
    .action(async (action: "status" | "up" | "down", options: CommonOptions) => {
      await withEngine(options, async (engine) => {
        if (action === "status") {
          const rows = (await engine.migrations.status()).map((m) => ({ name: m.name, applied: m.executedAt?.toISOString() ?? "pending" }));
          printRows(options, rows);
          return;
        }
        const names = action === "up" ? await engine.migrations.up() : await engine.migrations.down();
        printResult(options, { action, migrations: names }, names.length ? `${action}: ${names.join(", ")}` : `${action}: nothing to do`);
      }, { migrate: false });
    });
}
