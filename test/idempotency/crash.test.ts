/** The server SIGKILLed in the middle of a request, then the client retries: the work runs exactly once. */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, type EngineHarness, newKey, openEngine, post } from './harness.js';

const SERVER = fileURLToPath(new URL('./crash-server.ts', import.meta.url));

interface Service {
  child: ChildProcess;
  port: number;
  /** Resolves when the handler is running (hang mode). */
  inHandler: Promise<void>;
}

function startService(h: EngineHarness, mode: 'hang' | 'normal'): Promise<Service> {
  const { url, table, ledger } = h.location;
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER, h.engine, url, table, ledger, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  let inHandler!: () => void;
  const entered = new Promise<void>((resolve) => (inHandler = resolve));
  return new Promise((resolve, reject) => {
    let output = '';
    child.once('exit', (code) => reject(new Error(`the service exited (${code}) before listening: ${output}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('IN_HANDLER')) inHandler();
      const port = /LISTENING (\d+)/.exec(output)?.[1];
      if (port) resolve({ child, port: Number(port), inHandler: entered });
    });
  });
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe.each(ENGINES)('SIGKILL in the middle of a request, on %s', (engine) => {
  let h: EngineHarness;
  const children: ChildProcess[] = [];
  beforeAll(async () => (h = await openEngine(engine)));
  afterAll(async () => {
    await Promise.all(children.map(kill));
    await h.close();
  });

  it('leaves no key and no work; the retry runs the work exactly once, and its repeat replays', async () => {
    const { key, header } = newKey();
    const note = `crash-${key}`;
    const headers = { 'idempotency-key': header, 'x-client': 'alice' };

    const doomed = await startService(h, 'hang');
    children.push(doomed.child);
    const lost = post(`http://127.0.0.1:${doomed.port}/pay`, { note, amount: 7 }, headers).catch((error: unknown) => error);
    await doomed.inHandler;
    await kill(doomed.child);
    expect(await lost).toBeInstanceOf(Error);
    expect([await h.ledger(note), await h.keyRows(key)]).toEqual([0, 0]);

    const revived = await startService(h, 'normal');
    children.push(revived.child);
    const url = `http://127.0.0.1:${revived.port}/pay`;
    // The database may take a moment to notice the dead session and roll it back: until then, 409.
    let retry = await post(url, { note, amount: 7 }, headers);
    for (let attempt = 0; retry.status === 409 && attempt < 50; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      retry = await post(url, { note, amount: 7 }, headers);
    }
    expect([retry.status, retry.headers.get('idempotent-replayed'), retry.json?.pid]).toEqual([201, null, revived.child.pid]);
    const repeat = await post(url, { note, amount: 7 }, headers);
    expect([repeat.status, repeat.headers.get('idempotent-replayed'), repeat.text]).toEqual([201, 'true', retry.text]);
    expect([await h.ledger(note), await h.keyRows(key)]).toEqual([1, 1]);
  });
});
