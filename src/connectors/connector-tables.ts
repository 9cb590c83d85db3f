import type { Generated, Kysely } from "kysely";

/**
 * The connectors' own tables (migrations/0003), in the projection database but not projected
 * from documents: the node's record of what it sent where. Declared here, not with the
 * projection's tables, so that the projection knows nothing of connectors; the composition
 * root hands the connectors `connectorDb(engine.db)`.
 */
export interface ConnectorTables {
  remote_ids: RemoteIdsTable;
  outbox: OutboxTable;
  remote_sync: RemoteSyncTable;
  remote_conflicts: RemoteConflictsTable;
  conflict_strategies: ConflictStrategiesTable;
  webhook_events: WebhookEventsTable;
  entity_sync_status: EntitySyncStatusView;
}

/**
 * The projection database seen through the connectors' tables only. (Kysely's `withTables`
 * keeps the other tables in the type, which the connectors must not depend on.)
 */
export function connectorDb<DB>(db: Kysely<DB>): Kysely<ConnectorTables> {
  return db as unknown as Kysely<ConnectorTables>;
}

/** A system the connectors talk to. */
export type RemoteSystem = "canvas" | "discourse";

/** Which remote object a document is (see migrations/0003). */
export interface RemoteIdsTable {
  system: RemoteSystem;
  remote_type: string;
  remote_id: string;
  doc_url: string;
}

export type OutboxStatus = "pending" | "sending" | "sent" | "failed" | "conflict";

/** A local change waiting to reach a system (see migrations/0003). */
export interface OutboxTable {
  id: Generated<number>;
  system: RemoteSystem;
  doc_url: string;
  operation: "create" | "update" | "delete";
  status: OutboxStatus;
  idempotency_key: string;
  attempts: Generated<number>;
  last_error: string | null;
  /** ISO time before which the entry is not retried. */
  not_before: string | null;
  remote_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface RemoteSyncTable {
  doc_url: string;
  system: RemoteSystem;
  state: "pending" | "in_sync" | "conflict";
  local_heads: string | null;
  remote_version: string | null;
  synced_at: string | null;
  /** JSON `SyncBase`: the fields at the last sync, on both sides (see sync-base.ts). */
  base: string | null;
}

export interface RemoteConflictsTable {
  id: Generated<number>;
  doc_url: string;
  system: RemoteSystem;
  field: string;
  local_value: string | null;
  remote_value: string | null;
  strategy: ConflictStrategy;
  resolution: string;
  detected_at: string;
}

export type ConflictStrategy = "prefer_canvas" | "prefer_discourse" | "prefer_recent" | "merge_prefer_canvas" | "merge_prefer_discourse";

export interface ConflictStrategiesTable {
  course_url: string;
  kind: string;
  strategy: ConflictStrategy;
}


/** Webhook deliveries already taken (see migrations/0004). */
export interface WebhookEventsTable {
  system: RemoteSystem;
  event_id: string;
  received_at: string;
}

export type SyncState = RemoteSyncTable["state"];

/** Per document, its sync state with each system (a view; see migrations/0004). */
export interface EntitySyncStatusView {
  doc_url: string;
  canvas: SyncState | null;
  discourse: SyncState | null;
}
