/** What one pull did, per record: a connector reports, it never throws for one bad object. */
export interface PullResult {
  created: number;
  updated: number;
  unchanged: number;
  /** Documents whose remote object is gone (a full listing no longer has it): tombstoned or marked deleted. */
  deleted: number;
  failed: Array<{ what: string; error: string }>;
  /** Listings that could not be read in full: nothing they hold was taken as deleted. */
  incomplete: string[];
  /** New objects left for the next sync: they may be what an interrupted create made. */
  deferred: number;
}

export function emptyPullResult(): PullResult {
  return { created: 0, updated: 0, unchanged: 0, deleted: 0, failed: [], incomplete: [], deferred: 0 };
}
