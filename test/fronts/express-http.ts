/** Express 5 and Express 4 side by side, listening on loopback for real requests. */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import express from 'express';

// `express4` is an npm alias of express@4, which ships no types; its API is the one @types/express describes.
const express4 = createRequire(import.meta.url)('express4') as typeof express;

export const EXPRESS_VERSIONS = [
  ['express 5', express],
  ['express 4', express4],
] as const;

export interface Listening {
  url: string;
  close(): Promise<void>;
}

/** Starts `app` (any Node request listener: an Express app, Koa's `callback()`) on a free loopback port. */
export function listen(app: RequestListener): Promise<Listening> {
  return listenOn(createServer(app));
}

/** Starts a Node server on a free loopback port. */
export function listenOn(server: Server): Promise<Listening> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

/** The answer to one request: status, the raw body text (what a substring-reading coordinator sees) and its JSON. */
export async function request(url: string, init: RequestInit = {}) {
  const response = await fetch(url, { method: 'POST', ...init });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json: json as Record<string, unknown> | undefined, type: response.headers.get('content-type') };
}

/** A query string naming one branch operation, DTM-style. */
export function dtmQuery(gid: string, op: string, transType = 'saga', branchId = '01'): string {
  return new URLSearchParams({ gid, trans_type: transType, branch_id: branchId, op }).toString();
}
