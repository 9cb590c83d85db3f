import { Worker } from "node:worker_threads";
import type * as A from "@automerge/automerge";
import type { DocRecord } from "./doc-storage.js";
import type { DocumentId } from "./ids.js";

export interface DescribeRequest {
  seq: number;
  items: Array<{ id: DocumentId; data: Uint8Array }>;
}

/** A new document's record (its `updatedAt` left for the store to set) and heads. */
export interface Described {
  heads: A.Heads;
  record: DocRecord;
}

/** One result per item, in order; null where the worker could not load or describe it (the store's own path then decides). */
export interface DescribeResponse {
  seq: number;
  results: Array<Described | null>;
}

/** How long an idle worker lives: it holds Automerge's wasm memory, which only a new thread gives back. */
const IDLE_MS = 10_000;

/**
 * Loads and describes documents that arrive whole in a worker thread, so a course arriving
 * uses both cores: loading a document is about half the cost of receiving it. The worker
 * starts on first use and stops when idle. If it fails, every pending request is rejected and
 * the next one starts a new worker.
 */
export class WholeDocDescriber {
  #worker: Worker | null = null;
  #seq = 0;
  readonly #pending = new Map<number, { resolve: (results: DescribeResponse["results"]) => void; reject: (error: Error) => void }>();
  #idleTimer: NodeJS.Timeout | null = null;
  #closed = false;

  describe(items: DescribeRequest["items"]): Promise<DescribeResponse["results"]> {
    if (this.#closed) return Promise.reject(new Error("the describer is closed"));
    const worker = this.#start();
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject });
      this.#busy();
      // A view of a frame would carry the whole frame across: each document is copied alone.
      worker.postMessage({ seq, items: items.map(({ id, data }) => ({ id, data: data.slice() })) } satisfies DescribeRequest);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#stop(new Error("the describer closed"));
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL("./describe-worker-entry.mjs", import.meta.url));
    worker.on("message", (response: DescribeResponse) => {
      const pending = this.#pending.get(response.seq);
      this.#pending.delete(response.seq);
      pending?.resolve(response.results);
      if (this.#pending.size === 0) this.#idle();
    });
    const fail = (error: Error) => {
      if (this.#worker !== worker) return;
      void this.#stop(error);
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`the describe worker exited with code ${code}`)));
    this.#worker = worker;
    return worker;
  }

  #busy(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    this.#worker?.ref();
  }

  #idle(): void {
    // Unreferenced while idle: a waiting worker never keeps a process alive.
    this.#worker?.unref();
    this.#idleTimer = setTimeout(() => void this.#stop(), IDLE_MS);
    this.#idleTimer.unref();
  }

  async #stop(error?: Error): Promise<void> {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    const worker = this.#worker;
    this.#worker = null;
    for (const pending of this.#pending.values()) pending.reject(error ?? new Error("the describe worker stopped"));
    this.#pending.clear();
    await worker?.terminate();
  }
}
