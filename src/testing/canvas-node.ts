import { canvasClient } from "../connectors/canvas/canvas-client.js";
import { canvasInstance } from "../connectors/canvas/canvas-mapping.js";
import { pullCanvasCourse } from "../connectors/canvas/canvas-pull.js";
import { pushCanvasChanges } from "../connectors/canvas/canvas-push.js";
import { connectorDb } from "../connectors/connector-tables.js";
import { Outbox } from "../connectors/outbox.js";
import { Engine } from "../engine.js";
import { FakeCanvas, type FakeCanvasOptions } from "./fake-canvas/index.js";
import { makeTempDir } from "./temp-dir.js";

/**
 * A node connected to a fake Canvas course 4201, for connector tests: `pull` and `push` run the
 * real connector, `tick` moves the fake's clock, `close` stops both and removes the node. The
 * connector's waits (throttling, backoff) pass on the fake's clock at once and are kept in `waits`.
 */
export async function canvasTestNode(fake: Omit<FakeCanvasOptions, "clock"> = {}) {
  let now = Date.parse("2025-01-22T12:00:00Z");
  const canvas = await FakeCanvas.start({ ...fake, clock: () => now });
  const temp = makeTempDir();
  const engine = await Engine.open({ dataDir: temp.dir, create: true });
  const instance = canvasInstance(canvas.url);
  const waits: number[] = [];
  const sleep = async (ms: number): Promise<void> => {
    waits.push(ms);
    now += ms;
  };
  const client = canvasClient({ url: canvas.url, token: () => canvas.token, sleep });
  const db = connectorDb(engine.db);
  const outbox = new Outbox(db);
  return {
    canvas,
    engine,
    instance,
    client,
    waits,
    sleep,
    db,
    outbox,
    pull: () => pullCanvasCourse({ client, instance, store: engine.docs, db, courseId: "4201" }),
    push: () => pushCanvasChanges({ client, store: engine.docs, db, outbox, courseId: "4201" }),
    tick: (ms: number) => (now += ms),
    close: async () => {
      await engine.close();
      await canvas.close();
      temp.remove();
    },
  };
}
