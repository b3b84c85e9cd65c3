/** What the global setup hands every test file of the Restate suite. */
export interface RestateContext {
  /** The server's ingress and admin API, `http://127.0.0.1:<port>` (empty when skipped). */
  ingress: string;
  admin: string;
  /** Why the suite does not run here (Node < 22 outside CI): each file's tests are skipped. */
  skipped?: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    restate: RestateContext;
  }
}
