/**
 * Three-way text merge: two edits of one text, made apart from a common base, combined when
 * they touch different parts of it. Texts are compared word by word (a word and the space
 * after it are separate tokens), so a fix of one word and a sentence added elsewhere merge,
 * while two rewrites of the same words do not. Pure: no I/O, no clock.
 */

/** Above this many comparisons the texts are too large to diff here: the caller picks a side. */
const MAX_CELLS = 4_000_000;

/** One change against the base: tokens [start, end) replaced by `tokens`. */
interface Edit {
  start: number;
  end: number;
  tokens: string[];
}

/** The merged text, or null when both sides changed the same words differently. */
export function mergeText(base: string, ours: string, theirs: string): string | null {
  if (ours === theirs) return ours;
  if (ours === base) return theirs;
  if (theirs === base) return ours;
  const baseTokens = tokenize(base);
  const a = editsFrom(baseTokens, tokenize(ours));
  const b = editsFrom(baseTokens, tokenize(theirs));
  if (a === null || b === null) return null;
  const merged: string[] = [];
  let position = 0;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    let next: Edit;
    if (x && y && overlap(x, y)) {
      if (!sameEdit(x, y)) return null;
      next = x;
      i++;
      j++;
    } else if (x && (!y || x.start < y.start || (x.start === y.start && x.end <= y.end))) {
      next = x;
      i++;
    } else {
      next = y!;
      j++;
    }
    merged.push(...baseTokens.slice(position, next.start), ...next.tokens);
    position = next.end;
  }
  merged.push(...baseTokens.slice(position));
  return merged.join("");
}

function tokenize(text: string): string[] {
  return text.match(/\s+|[^\s]+/g) ?? [];
}

/** Two edits collide when their ranges intersect or both insert at the same place. */
function overlap(x: Edit, y: Edit): boolean {
  if (x.start === y.start) return true;
  return x.start < y.end && y.start < x.end;
}

function sameEdit(x: Edit, y: Edit): boolean {
  return x.start === y.start && x.end === y.end && x.tokens.join("") === y.tokens.join("");
}

/** The edits that turn `base` into `other`, from a longest common subsequence of tokens. */
function editsFrom(base: readonly string[], other: readonly string[]): Edit[] | null {
  let prefix = 0;
  while (prefix < base.length && prefix < other.length && base[prefix] === other[prefix]) prefix++;
  let suffix = 0;
  while (suffix < base.length - prefix && suffix < other.length - prefix && base[base.length - 1 - suffix] === other[other.length - 1 - suffix]) suffix++;
  const n = base.length - prefix - suffix;
  const m = other.length - prefix - suffix;
  if ((n + 1) * (m + 1) > MAX_CELLS) return null;
  // lcs[i * (m + 1) + j]: the common subsequence length of the middles from i and j on.
  const lcs = new Uint32Array((n + 1) * (m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * (m + 1) + j] = base[prefix + i] === other[prefix + j] ? lcs[(i + 1) * (m + 1) + j + 1]! + 1 : Math.max(lcs[(i + 1) * (m + 1) + j]!, lcs[i * (m + 1) + j + 1]!);
    }
  }
  const edits: Edit[] = [];
  let open: Edit | null = null;
  const flush = () => {
    if (open) edits.push(open);
    open = null;
  };
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && base[prefix + i] === other[prefix + j]) {
      flush();
      i++;
      j++;
    } else if (j < m && (i === n || lcs[i * (m + 1) + j + 1]! >= lcs[(i + 1) * (m + 1) + j]!)) {
      open ??= { start: prefix + i, end: prefix + i, tokens: [] };
      open.tokens.push(other[prefix + j]!);
      j++;
    } else {
      open ??= { start: prefix + i, end: prefix + i, tokens: [] };
      open.end = prefix + i + 1;
      i++;
    }
  }
  flush();
  return edits;
}
