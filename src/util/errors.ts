/** The engine's errors: a stable `code` for programs, a message for people, the `cause` kept. */
export class OrdoError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "OrdoError";
  }
}
