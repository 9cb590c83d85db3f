import { ImmutableString } from "@automerge/automerge";
import { isDocUrl, type DocUrl } from "../ids.js";

/**
 * How one field of a document is checked, read and stored.
 *
 * Root-level strings nobody co-edits are stored as `ImmutableString` (loading them costs
 * about a quarter less CPU than collaborative text); fields marked `text` are Automerge
 * text and merge character by character. Nested values are stored as Automerge gives them.
 */
export interface FieldSpec<T> {
  /** An error message when a stored value is not of this field's type, else null. */
  check(stored: unknown): string | null;
  /** The plain value of a stored one (absent means the default). */
  read(stored: unknown): T;
  /** What to put in the document for a plain value. */
  store(value: T): unknown;
  /** The value of a field nobody has set. */
  readonly fallback: T;
  /** Collaborative text, merged character by character. */
  readonly text: boolean;
}

function spec<T>(
  fallback: T,
  isValid: (plain: unknown) => boolean,
  expected: string,
  options: { text?: boolean; store?: (value: T) => unknown; plain?: (stored: unknown) => unknown } = {},
): FieldSpec<T> {
  const toPlain = options.plain ?? unwrapString;
  // A list fallback is copied on every read: one shared array would carry one entity's edits into the next.
  const unset = (): T => (Array.isArray(fallback) ? ([...fallback] as T) : fallback);
  return {
    fallback,
    text: options.text ?? false,
    check: (stored) => (stored === undefined || isValid(toPlain(stored)) ? null : `expected ${expected}`),
    read: (stored) => (stored === undefined ? unset() : (toPlain(stored) as T)),
    store: options.store ?? ((value) => value),
  };
}

function unwrapString(stored: unknown): unknown {
  return stored instanceof ImmutableString ? stored.val : stored;
}

function storeString(value: string | null): unknown {
  return value === null ? null : new ImmutableString(value);
}

const isString = (v: unknown): v is string => typeof v === "string";
const isFiniteNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isIsoTime = (v: unknown): v is string => isString(v) && !Number.isNaN(Date.parse(v));

/** Deep copy of a nested Automerge value into plain JSON-like data. */
export function toPlain(value: unknown): unknown {
  if (value instanceof ImmutableString) return value.val;
  if (Array.isArray(value)) return value.map(toPlain);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = toPlain((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

export const field = {
  /** A plain string nobody co-edits (ids, titles, slugs, states). */
  string: (fallback = "") => spec<string>(fallback, isString, "a string", { store: storeString }),
  nullableString: () =>
    spec<string | null>(null, (v) => v === null || isString(v), "a string or null", { store: storeString }),
  /** Collaborative text: page bodies, post messages, submission bodies, descriptions. */
  text: () => spec<string>("", isString, "text", { text: true }),
  /** An ISO-8601 instant, stored as written (UTC, `Z`). */
  time: () =>
    spec<string | null>(null, (v) => v === null || isIsoTime(v), "an ISO-8601 time or null", {
      store: storeString,
    }),
  number: (fallback = 0) => spec<number>(fallback, isFiniteNumber, "a number"),
  nullableNumber: () => spec<number | null>(null, (v) => v === null || isFiniteNumber(v), "a number or null"),
  boolean: (fallback = false) => spec<boolean>(fallback, (v) => typeof v === "boolean", "a boolean"),
  oneOf: <const T extends string>(values: readonly T[], fallback: T) =>
    spec<T>(fallback, (v) => isString(v) && (values as readonly string[]).includes(v), values.join("|"), {
      store: storeString,
    }),
  /** A reference to another document. */
  docUrl: () => spec<DocUrl | null>(null, (v) => v === null || isDocUrl(v), "a document URL or null", {
    store: storeString,
  }),
  /** A list of plain records; `check` validates each element. */
  list: <T>(isItem: (item: unknown) => string | null, expected: string) =>
    spec<T[]>([], (v) => Array.isArray(v) && v.every((item) => isItem(item) === null), expected, {
      plain: toPlain,
      store: (items) => items,
    }),
  /**
   * A list of plain strings nobody co-edits (a set of options), replaced whole when written.
   * Items are stored immutable, as root-level strings are.
   */
  stringList: (fallback: readonly string[] = []) =>
    spec<string[]>([...fallback], (v) => Array.isArray(v) && v.every(isString), "a list of strings", {
      plain: toPlain,
      store: (items) => items.map((item) => new ImmutableString(item)),
    }),
};

/** Checks a plain record against per-key predicates; used for list elements. */
export function checkRecord(shape: Record<string, (v: unknown) => boolean>): (item: unknown) => string | null {
  return (item) => {
    if (item === null || typeof item !== "object") return "expected an object";
    for (const [key, ok] of Object.entries(shape)) {
      if (!ok((item as Record<string, unknown>)[key])) return `bad ${key}`;
    }
    return null;
  };
}

export const is = {
  string: isString,
  nullableString: (v: unknown) => v === null || v === undefined || isString(v),
  number: isFiniteNumber,
  nullableNumber: (v: unknown) => v === null || v === undefined || isFiniteNumber(v),
  docUrl: (v: unknown) => isDocUrl(v),
  nullableDocUrl: (v: unknown) => v === null || v === undefined || isDocUrl(v),
  time: (v: unknown) => v === null || v === undefined || isIsoTime(v),
  boolean: (v: unknown) => typeof v === "boolean",
};
