import { Command, CommanderError } from "commander";
import { registerConflicts } from "./commands/conflicts.js";
import { registerConnect } from "./commands/connect.js";
import { registerDemo } from "./commands/demo.js";
import { registerDocs } from "./commands/docs.js";
import { registerInit } from "./commands/init.js";
import { registerMigrate } from "./commands/migrate.js";
import { registerQuery } from "./commands/query.js";
import { registerRebuild } from "./commands/rebuild.js";
import { registerSearch } from "./commands/search.js";
import { registerRelay, registerServe } from "./commands/serve.js";
import { registerShow } from "./commands/show.js";
import { registerStatus } from "./commands/status.js";
import { registerToken } from "./commands/token.js";
import { registerTrust } from "./commands/trust.js";

// A reader that stops early (`ordo docs | head`) is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

const program = new Command("ordo")
  .description("Ordo Sync: a local-first sync engine for classrooms")
  .showSuggestionAfterError()
  .exitOverride();

for (const register of [registerInit, registerDemo, registerDocs, registerShow, registerQuery, registerSearch, registerRebuild, registerMigrate, registerStatus, registerServe, registerRelay, registerToken, registerTrust, registerConnect, registerConflicts]) {
  register(program);
}
for (const sub of program.commands) sub.exitOverride();

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander already printed its one line (or the help); keep its exit code.
    process.exit(error.exitCode);
  }
  process.stderr.write(`ordo: ${(error as Error).message}\n`);
  process.exit(1);
}
