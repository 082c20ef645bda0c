import { createServer, type Server, type Socket } from 'node:net';

/**
 * A unix socket server that speaks the start of QMP: the greeting, `qmp_capabilities`,
 * `query-status` (running) and any other command answered `{}`; `emit` sends an event to the
 * connected clients. Stands for a QEMU where the test needs one it can close at will.
 */
export interface FakeQmp {
  readonly socket: string;
  readonly clients: ReadonlySet<Socket>;
  emit(event: string, data: Record<string, unknown>): void;
  close(): Promise<void>;
}

export async function startFakeQmp(socket: string, options: { readonly greet?: boolean } = {}): Promise<FakeQmp> {
  const clients = new Set<Socket>();
  const server: Server = createServer((connection) => {
    clients.add(connection);
    connection.on('close', () => clients.delete(connection));
    connection.on('error', () => undefined);
    if (options.greet === false) return;
    connection.write(`${JSON.stringify({ QMP: { version: { qemu: { major: 8, minor: 2, micro: 0 }, package: 'fake' }, capabilities: [] } })}\n`);
    let buffer = '';
    connection.setEncoding('utf8');
    connection.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
        const line = buffer.slice(0, end).trim();
        buffer = buffer.slice(end + 1);
        if (line === '') continue;
        const message = JSON.parse(line) as { execute: string; id?: string };
        const answer = message.execute === 'query-status' ? { status: 'running', running: true } : {};
        connection.write(`${JSON.stringify({ return: answer, id: message.id })}\n`);
      }
    });
  }).listen(socket);
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    socket,
    clients,
    emit: (event, data) => {
      const seconds = Math.floor(Date.now() / 1000);
      for (const client of clients) client.write(`${JSON.stringify({ event, data, timestamp: { seconds, microseconds: 0 } })}\n`);
    },
    close: async () => {
      for (const client of clients) client.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
