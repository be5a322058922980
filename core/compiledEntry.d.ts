/** See compiledEntry.js. */
export function compiledEntry(script: string): string | null;
