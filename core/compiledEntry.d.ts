/** See compiledEntry.js. racyMs: how recent a change of an input leaves the entry unstamped (default 2 s; tests set 0). */
export function compiledEntry(script: string, options?: { racyMs?: number }): string | null;
