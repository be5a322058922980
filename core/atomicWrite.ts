import { rename, writeFile } from "node:fs/promises";

/**
 * Writes a file so that readers (another process importing it) never see it half-written: to a
 * temporary name first (unique per process, so concurrent writers do not collide), then renamed.
 */
export async function writeFileAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}
