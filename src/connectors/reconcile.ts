import { isDeepStrictEqual } from "node:util";
import type { ConflictStrategy, RemoteSystem } from "./connector-tables.js";
import { mergeText } from "./text-merge.js";

/**
 * Deciding, field by field, what a document and its remote object must each take after both
 * may have changed since they were last in step. Pure: the connectors read the three
 * versions, call `reconcile`, and write what it says.
 *
 * A field changed here when it differs from its `local` base, and changed there when the
 * remote value differs from its `remote` base. The two bases differ when the system keeps a
 * field in its own form (Canvas rewrites links; a Discourse post's raw is markdown where the
 * document holds Canvas's HTML): comparing each side with its own base is what keeps a
 * mirrored change from coming back as a new one.
 *
 * Strategies, when both sides changed the object:
 * - `prefer_canvas`, `prefer_discourse`: the preferred side's version of the object wins,
 *   every field either side changed. In a conflict with the other system, the document's
 *   side is the preferred one (the document is what reaches the preferred system).
 * - `prefer_recent`: the side changed last wins the object. Clocks of two systems rarely
 *   agree to the second, so changes within `TIE_MS` of each other are a tie, won by the system.
 * - `merge_prefer_canvas`, `merge_prefer_discourse`: field by field. A field only one side
 *   changed keeps that change; text both changed in different places is merged; anything
 *   else goes to the preferred side, as above.
 */

export type FieldValues = Record<string, unknown>;

/** The fields as they stood at the last sync, on each side. */
export interface SyncBase {
  local: FieldValues;
  remote: FieldValues;
}

export interface ReconcileInput {
  /** The system on the other side. */
  system: RemoteSystem;
  /** Null when the two were never in step: the remote object is then taken as it is. */
  base: SyncBase | null;
  local: FieldValues;
  remote: FieldValues;
  strategy: ConflictStrategy;
  /** When the document and the remote object last changed (ISO instants), for `prefer_recent`. */
  localTime?: string | null;
  remoteTime?: string | null;
  /** Fields holding prose, merged word by word by the merge strategies. */
  textFields?: ReadonlySet<string>;
  /**
   * The system's form of a text (Discourse's markdown for Canvas's HTML). When the document
   * holds a text in another form than the system, the merge runs in the system's form, from
   * the remote base, so that the form itself is no difference.
   */
  remoteForm?: (text: string) => string;
}

export interface FieldConflict {
  field: string;
  local: unknown;
  remote: unknown;
  resolved: unknown;
  /** How it was settled, for people reading `ordo conflicts`. */
  resolution: string;
}

export interface Reconciled {
  /** What the document must take. */
  toLocal: FieldValues;
  /** What the remote object must take (in document form: the connector converts). */
  toRemote: FieldValues;
  conflicts: FieldConflict[];
  /** The bases to record once `toLocal` is written and `toRemote` sent. */
  nextBase: SyncBase;
}

/** Changes within this many milliseconds of each other count as simultaneous. */
export const TIE_MS = 2_000;

export function reconcile(input: ReconcileInput): Reconciled {
  const { base, local, remote } = input;
  const fields = [...new Set([...Object.keys(local), ...Object.keys(remote)])].sort();
  // A field neither base names was added to the kind since the last sync: the document holds
  // its fallback, not an edit. The system's value is taken and nothing is sent; the field
  // counts as changed on neither side, so it cannot make the object contested and let a
  // fallback overwrite what the system holds.
  const added = new Set(base ? fields.filter((f) => !Object.hasOwn(base.local, f) && !Object.hasOwn(base.remote, f)) : []);
  const compared = fields.filter((f) => !added.has(f));
  const changedHere = new Set(base ? compared.filter((f) => !same(local[f], base.local[f])) : []);
  const changedThere = new Set(compared.filter((f) => (base ? !same(remote[f], base.remote[f]) : !same(remote[f], local[f]))));
  const contested = fields.filter((f) => changedHere.has(f) && changedThere.has(f) && !same(local[f], remote[f]));
  const bothChanged = changedHere.size > 0 && changedThere.size > 0;
  const merging = input.strategy.startsWith("merge_");
  const objectWinner = bothChanged && !merging ? winner(input) : null;

  const resolved: FieldValues = {};
  const conflicts: FieldConflict[] = [];
  for (const field of fields) {
    const here = changedHere.has(field);
    const there = changedThere.has(field);
    let value: unknown = here ? local[field] : there ? remote[field] : local[field];
    if (added.has(field)) {
      value = remote[field] === undefined ? local[field] : remote[field];
    } else if (objectWinner && (here || there)) {
      value = objectWinner === "remote" ? remote[field] : local[field];
      const lost = objectWinner === "remote" ? here : there;
      if (lost && !same(local[field], remote[field])) conflicts.push({ field, local: local[field], remote: remote[field], resolved: value, resolution: `${describe(input, objectWinner)} kept (${input.strategy})` });
    } else if (contested.includes(field)) {
      const merged = merging && input.textFields?.has(field) ? mergeField(base, field, local[field], remote[field], input.remoteForm) : null;
      const side = winner(input);
      value = merged ?? (side === "remote" ? remote[field] : local[field]);
      conflicts.push({ field, local: local[field], remote: remote[field], resolved: value, resolution: merged !== null ? "text merged: both changes kept" : `${describe(input, side)} kept (${input.strategy})` });
    }
    resolved[field] = value;
  }

  const toLocal: FieldValues = {};
  const toRemote: FieldValues = {};
  for (const field of fields) {
    if (!same(resolved[field], local[field])) toLocal[field] = resolved[field];
    // A field neither side changed since the last sync holds one value in each side's form
    // (HTML Canvas rewrote, a grade Canvas spells its own way): there is nothing to send.
    const atBase = base !== null && !changedHere.has(field) && !changedThere.has(field);
    if (!atBase && !same(resolved[field], remote[field])) toRemote[field] = resolved[field];
  }
  // The remote side will hold `resolved` once sent; until then its base is what it holds now,
  // and a field still to send keeps the remote's value as its local base, so it shows as changed here.
  const nextLocal: FieldValues = { ...resolved };
  for (const field of Object.keys(toRemote)) nextLocal[field] = remote[field];
  return { toLocal, toRemote, conflicts, nextBase: { local: nextLocal, remote: { ...remote } } };
}

/** Which side's version wins a conflict under the input's strategy. */
function winner(input: ReconcileInput): "local" | "remote" {
  switch (input.strategy) {
    case "prefer_canvas":
    case "merge_prefer_canvas":
      return input.system === "canvas" ? "remote" : "local";
    case "prefer_discourse":
    case "merge_prefer_discourse":
      return input.system === "discourse" ? "remote" : "local";
    case "prefer_recent": {
      const here = Date.parse(input.localTime ?? "");
      const there = Date.parse(input.remoteTime ?? "");
      if (Number.isNaN(here) || Number.isNaN(there)) return "remote";
      return here - there > TIE_MS ? "local" : "remote";
    }
  }
}

function mergeField(base: SyncBase | null, field: string, ours: unknown, theirs: unknown, remoteForm?: (text: string) => string): string | null {
  if (typeof ours !== "string" || typeof theirs !== "string") return null;
  const converted = remoteForm?.(ours);
  if (converted !== undefined && converted !== ours) {
    const common = base?.remote[field];
    return typeof common === "string" ? mergeText(common, converted, theirs) : null;
  }
  const common = base?.local[field];
  return typeof common === "string" ? mergeText(common, ours, theirs) : null;
}

function describe(input: ReconcileInput, side: "local" | "remote"): string {
  return side === "remote" ? `${input.system}'s value` : "this node's value";
}

/** Equality of field values; undefined and null are both "no value". */
function same(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(a ?? null, b ?? null);
}
