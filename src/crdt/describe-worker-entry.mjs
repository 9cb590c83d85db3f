// A worker runs outside the caller's module loader: register tsx, then run the TypeScript body.
import { register } from "tsx/esm/api";

register();
await import("./describe-worker.ts");
