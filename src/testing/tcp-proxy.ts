import { connect, createServer, type Socket } from "node:net";

export interface TcpProxy {
  port: number;
  /** Every byte the server has sent through the proxy so far. */
  received(): Buffer;
  /** Drops every connection through the proxy, as a network that goes away would. */
  cut(): void;
  /** Refuses (drops at once) new connections until `online` is called: the network stays away. */
  offline(): void;
  online(): void;
  close(): void;
}

/** A loopback TCP proxy in front of `upstreamPort` that records what the server sends and can cut connections. */
export async function tcpProxy(upstreamPort: number): Promise<TcpProxy> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(upstreamPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => socket.destroy());
      socket.on("close", () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.on("data", (chunk: Buffer) => chunks.push(chunk));
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    received: () => Buffer.concat(chunks),
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    offline: () => {
      refusing = true;
    },
    online: () => {
      refusing = false;
    },
    close: () => server.close(),
  };
}
