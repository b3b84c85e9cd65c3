/** What the global setup hands every test file of the Restate suite. */
export type RestateContext =
  | {
      /** The server's ingress and admin API, `http://127.0.0.1:<port>`. */
      ingress: string;
      admin: string;
    }
  | {
      /** Why the suite does not run here (Node < 22 outside CI): each file says so and defines nothing else. */
      skipped: string;
    };

declare module 'vitest' {
  export interface ProvidedContext {
    restate: RestateContext;
  }
}
