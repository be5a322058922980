/**
 * Runs `fn` over every item, at most `limit` at a time, in order of the items. Like Promise.all
 * over them all, every item runs even when one fails; it resolves when all have settled and
 * rejects with the first error.
 */
export async function forEachConcurrently<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | undefined;
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(Math.floor(limit), items.length)) }, lane));
  if (failed) throw failed.error;
}
