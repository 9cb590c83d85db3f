import { pino } from "pino";

/** The logging surface the engine needs; pino's logger satisfies it, tests can pass a silent one. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A JSON logger on stderr, so that stdout stays free for command output. */
export function createLogger(level: string = "info"): Logger {
  return pino({ level, base: undefined }, pino.destination(2));
}
