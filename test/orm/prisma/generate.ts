/**
 * The Prisma test clients, generated on first use from test/orm/prisma/<provider>/schema.prisma into
 * test/orm/prisma/generated/<provider> (gitignored), and again whenever the schema or Prisma changed.
 * `prisma generate` needs no database and no engine binary; the stub stops its CLI from trying to
 * download the schema engine, which this machine (and an offline CI) cannot.
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

export type PrismaProvider = 'postgresql' | 'mysql' | 'sqlite';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const run = promisify(execFile);

/** The generated module's `PrismaClient` class, loaded at run time: the module does not exist before generation. */
export async function generatedClient<Client>(provider: PrismaProvider): Promise<new (options: { adapter: unknown }) => Client> {
  const schema = join(here, provider, 'schema.prisma');
  const client = join(here, 'generated', provider, 'client.ts');
  const newest = Math.max(statSync(schema).mtimeMs, statSync(join(root, 'node_modules', 'prisma', 'package.json')).mtimeMs);
  if (!existsSync(client) || statSync(client).mtimeMs < newest) {
    await run(join(root, 'node_modules', '.bin', 'prisma'), ['generate', '--schema', schema], {
      cwd: root,
      env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false', CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
      timeout: 60_000,
    });
  }
  return ((await import(pathToFileURL(client).href)) as { PrismaClient: new (options: { adapter: unknown }) => Client }).PrismaClient;
}
