/** What the global setup hands every test file of the Temporal suite. */
export interface TemporalContext {
  /** The dev server's frontend, `127.0.0.1:<port>`. */
  address: string;
  namespace: string;
  /** The workflow bundle, built once per run. */
  bundle: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    temporal: TemporalContext;
  }
}
