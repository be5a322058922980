// FolderWatcher: one non-recursive watch per directory a scan listed, on the real file system.
import { watch } from "node:fs";
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { FolderWatcher } from "../../parser/folderWatcher.ts";
import { waitFor } from "../helpers/db.ts";

let root: string;
let watcher: FolderWatcher;
let changes = 0;
/** The directory of each change, in order. */
const seen: string[] = [];
const refused: string[] = [];

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "baton-watch-"));
  await mkdir(path.join(root, "sub"));
  changes = 0;
  seen.length = 0;
  refused.length = 0;
  watcher = new FolderWatcher(
    (dir) => {
      changes++;
      seen.push(dir);
    },
    (dir) => refused.push(dir),
  );
});

afterEach(async () => {
  watcher.close();
  await rm(root, { recursive: true, force: true });
});

/** Waits for at least one change after `action`. */
async function changeAfter(action: () => Promise<void>): Promise<void> {
  const before = changes;
  await action();
  await waitFor("a change event", async () => changes > before, 5000, 10);
}

it("reports files written in any watched directory, and nothing on the first call itself", async () => {
  watcher.watch([root, path.join(root, "sub")]);
  expect(changes).toBe(0);
  expect(watcher.watched).toEqual([root, path.join(root, "sub")]);
  await changeAfter(() => writeFile(path.join(root, "a.ts"), "export {};\n"));
  expect(seen.at(-1)).toBe(root);
  await changeAfter(() => writeFile(path.join(root, "sub", "b.ts"), "export {};\n"));
  expect(seen.at(-1)).toBe(path.join(root, "sub"));
});

it("counts a directory first watched by a later call as a change, and stops watching the ones left out", async () => {
  watcher.watch([root]);
  const added = path.join(root, "added");
  await mkdir(added);
  const before = changes;
  watcher.watch([added]);
  expect(changes).toBe(before + 1);
  expect(seen.at(-1)).toBe(added);
  expect(watcher.watched).toEqual([added]);
  await changeAfter(() => writeFile(path.join(added, "c.ts"), "export {};\n"));

  // root is no longer watched: a file there changes nothing. Events arrive in order, so once the
  // write in `added` is reported, one from root would have been too.
  const settled = seen.length;
  await writeFile(path.join(root, "ignored.ts"), "export {};\n");
  await changeAfter(() => writeFile(path.join(added, "d.ts"), "export {};\n"));
  expect(new Set(seen.slice(settled))).toEqual(new Set([added]));
  const now = changes;
  watcher.watch([added]);
  expect(changes).toBe(now); // no new directory: no extra change
});

it("reports a directory fs.watch refuses once, however often it is asked, and watches it once it can", () => {
  let refuse = true;
  const flaky = new FolderWatcher(
    () => changes++,
    (dir) => refused.push(dir),
    (dir, listener) => {
      if (refuse) throw Object.assign(new Error("ENOSPC: System limit for number of file watchers reached"), { code: "ENOSPC" });
      return watch(dir, listener);
    },
  );
  try {
    flaky.watch([root]);
    flaky.watch([root]);
    expect(refused).toEqual([root]);
    expect(flaky.watched).toEqual([]);
    refuse = false;
    flaky.watch([root]);
    expect(flaky.watched).toEqual([root]);
    expect(changes).toBe(1); // newly watched after the first call: files may have changed unseen
  } finally {
    flaky.close();
  }
});

it("skips a directory gone since the scan listed it", () => {
  watcher.watch([path.join(root, "missing")]);
  expect(watcher.watched).toEqual([]);
  expect(refused).toEqual([]);
});

it("re-watches a path that names another directory now (a git-sync symlink swap)", async () => {
  const first = path.join(root, "rev1");
  const second = path.join(root, "rev2");
  await mkdir(first);
  await mkdir(second);
  const link = path.join(root, "current");
  await symlink(first, link);
  watcher.watch([link]);
  // Swap atomically, as git-sync does: a new link renamed over the old one.
  await symlink(second, `${link}.new`);
  await rename(`${link}.new`, link);
  const before = changes;
  watcher.watch([link]);
  expect(changes).toBe(before + 1);
  await changeAfter(() => writeFile(path.join(second, "swapped.ts"), "export {};\n"));
  expect(seen.at(-1)).toBe(link);
});

it("watches nothing after close", async () => {
  watcher.watch([root]);
  watcher.close();
  expect(watcher.watched).toEqual([]);
  watcher.watch([root]);
  expect(watcher.watched).toEqual([]);
  // Events arrive in order: once a probe watcher reports a later write, a stray one would have come.
  let probed = 0;
  const probe = new FolderWatcher(() => probed++, () => undefined);
  try {
    probe.watch([path.join(root, "sub")]);
    await writeFile(path.join(root, "late.ts"), "export {};\n");
    await writeFile(path.join(root, "sub", "probe.ts"), "export {};\n");
    await waitFor("the probe's event", async () => probed > 0, 5000, 10);
  } finally {
    probe.close();
  }
  expect(changes).toBe(0);
});
