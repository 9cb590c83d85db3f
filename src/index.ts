/**
 * Ordo Sync: a local-first sync engine for classrooms. Every entity is an Automerge
 * document in one durable store; a projection keeps SQL tables in step with them.
 *
 * @example
 * import { Engine, queries } from "ordo-sync";
 * const engine = await Engine.open({ dataDir: "./.ordo", create: true });
 * const course = await engine.docs.create("course", { name: "Biology 101" });
 * await engine.whenProjected();
 * console.log(await queries.courseRoster(engine.db, course.url));
 */
export { Engine, type EngineOptions, type EngineStatus } from "./engine.js";
export { DocStore, type CreateInput, type CreateOptions, type DocChange, type WriteOptions, type ReceiveResult } from "./crdt/doc-store.js";
export type { DocRecord, DocStorage, RecordQuery } from "./crdt/doc-storage.js";
export { openSqliteStorage, SqliteStorageAdapter } from "./crdt/sqlite-storage-adapter.js";
export { externalDocUrl, newDocUrl, isDocUrl, type DocUrl, type ExternalIdentity } from "./crdt/ids.js";
export type { Entity, Draft, ExternalIds, Tombstone } from "./crdt/schema/document.js";
export { SchemaError } from "./crdt/schema/document.js";
export { KINDS, type Kind, type Fields, type User, type Course, type Enrollment, type Module, type ModuleItem, type Assignment, type Submission, type Grade, type GradeComment, type DiscussionTopic, type Post, type Page } from "./crdt/schema/kinds.js";
export { catalogUrl } from "./crdt/catalog.js";
export type { Audience } from "./crdt/schema/audience.js";
export type { DocSnapshot } from "./crdt/snapshot.js";
export type { Database } from "./projection/database.js";
export * as queries from "./projection/queries.js";
export { dumpTables } from "./projection/table-dump.js";
export { seedDemoCourse, type DemoOptions, type DemoSummary } from "./demo/demo-course.js";
export { OrdoError } from "./util/errors.js";

// Networking: a node and a relay, the course authority that signs their tokens, the trust
// and revocation lists that decide whom a node accepts, and LAN discovery.
export { SyncNode, type SyncNodeOptions, type NodeStatus } from "./node/sync-node.js";
export { Authority, type IssueRequest } from "./net/authority.js";
export { Verifier, trustIssuer, revokeToken, type VerifierOptions, type TrustedIssuer, type Revocation } from "./net/trust.js";
export { LanDiscovery, type LanDiscoveryOptions, type LanPeer } from "./net/discovery.js";
export { Replicator, type ReplicatorOptions, type PeerStatus } from "./replication/replicator.js";
export { CloseCode, type CloseCodeName } from "./net/close-codes.js";
export { TokenError, type Principal, type Role, type TokenProblem } from "./net/principal.js";

// Connectors: a Canvas course and a Discourse forum kept in step with the documents, with a
// durable outbox, conflict strategies and a sync status per document.
export { syncCanvas, syncDiscourse, type ConnectorSyncOptions, type CanvasSyncResult, type DiscourseSyncResult } from "./connectors/connector-sync.js";
export { readConnectorSettings, writeConnectorSettings, type ConnectorSettings, type CanvasSettings, type DiscourseSettings } from "./connectors/connector-config.js";
export { connectorDb, type ConnectorTables, type ConflictStrategy, type RemoteSystem } from "./connectors/connector-tables.js";
export { connectorStatus, unsettledEntities, type ConnectorStatus, type UnsettledEntity } from "./connectors/connector-status.js";
export { setStrategy, strategyFor, STRATEGIES, DEFAULT_STRATEGY } from "./connectors/sync-base.js";
export { reconcile, type SyncBase, type Reconciled, type FieldConflict } from "./connectors/reconcile.js";
