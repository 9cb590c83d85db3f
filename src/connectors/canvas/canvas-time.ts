/**
 * Times as Canvas must receive them. Canvas reads a time without an offset in the requesting
 * user's profile zone, which need not be the course's: a teacher travelling, or a token of a
 * user whose profile says another zone, would move every due date. So every time the connector
 * sends is an instant with an explicit `Z`. A document time written without an offset is a wall
 * time of the course (23:59 in class is 23:59 in the course's zone). Pure functions.
 */

const WALL_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3})\d*)?)?)?$/;

/** A document time as the instant Canvas must get (`2025-01-29T05:59:00Z`); null for null, empty or unreadable input. */
export function canvasInstant(value: string | null | undefined, timeZone: string): string | null {
  if (typeof value !== "string" || value.trim() === "") return null;
  const text = value.trim();
  const wall = WALL_TIME.exec(text);
  const ms = wall ? wallTimeToInstant(wall, timeZone) : Date.parse(text);
  if (Number.isNaN(ms)) return null;
  // Canvas keeps seconds; milliseconds are sent only when there are some.
  return new Date(ms).toISOString().replace(/\.000Z$/, "Z");
}

function wallTimeToInstant(parts: RegExpExecArray, timeZone: string): number {
  const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "0"] = parts;
  const wall = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Number(frac.padEnd(3, "0")));
  // The zone's offset at the wall time read as UTC is off by the offset change near a
  // daylight-saving switch; a second pass at the first guess settles it.
  const first = wall - zoneOffsetMs(wall, timeZone);
  return wall - zoneOffsetMs(first, timeZone);
}

/** How far `timeZone` is ahead of UTC at `instant`, in ms (Chicago in January: −6 h); an unknown zone counts as UTC. */
export function zoneOffsetMs(instant: number, timeZone: string): number {
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat("en-US", { timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  } catch {
    return 0;
  }
  const parts = format.formatToParts(new Date(instant));
  const get = (type: Intl.DateTimeFormatPartTypes): number => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return asUtc - Math.floor(instant / 1000) * 1000;
}
