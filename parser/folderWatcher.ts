// Tells the DAG processor that something under the DAG folder may have changed: one
// non-recursive fs.watch per directory, the directories a scan listed. Node 20's recursive watch
// on Linux is a JavaScript layer that opens an inotify watch per file and re-lists a directory on
// every event inside it: rewriting 1,000 DAG files cost the standalone process about a million
// path joins per round (≈ 12 % of its CPU in the parse benchmark), and node_modules or dot-folders
// under the DAG folder were watched file by file too.
import { statSync, watch, type FSWatcher } from "node:fs";

export class FolderWatcher {
  /** Each watched directory's watcher and the inode it watches: a path may come to name another directory (a git-sync symlink swap, a folder re-created). */
  private readonly watchers = new Map<string, { watcher: FSWatcher; inode: number }>();
  /** Directories fs.watch refused, reported once each. */
  private readonly refused = new Set<string>();
  private started = false;
  private closed = false;

  /**
   * @param onChange called with the directory on any event in it, or when a directory is first
   *   watched after the first call (callers debounce)
   * @param onUnwatchable called once per directory fs.watch refused (e.g. out of inotify watches);
   *   changes there are then seen only by periodic rescans
   */
  constructor(
    private readonly onChange: (dir: string) => void,
    private readonly onUnwatchable: (dir: string, err: Error) => void,
    private readonly watchDir: (dir: string, listener: () => void) => FSWatcher = watch,
  ) {}

  /**
   * Watches exactly these directories from now on. A directory first watched after the first call
   * counts as a change: files may have landed in it before its watch began.
   */
  watch(dirs: Iterable<string>): void {
    if (this.closed) return;
    const wanted = new Set(dirs);
    for (const [dir, { watcher }] of this.watchers) {
      if (!wanted.has(dir)) this.unwatch(dir, watcher);
    }
    let added: string | undefined;
    for (const dir of wanted) {
      const inode = inodeOf(dir);
      const current = this.watchers.get(dir);
      if (current && current.inode === inode) continue;
      if (current) this.unwatch(dir, current.watcher);
      if (inode === undefined) continue; // gone since the scan listed it
      try {
        const watcher = this.watchDir(dir, () => this.onChange(dir));
        // A directory removed or unreadable: forget it; the scan this change starts lists what is left.
        watcher.on("error", () => {
          this.unwatch(dir, watcher);
          this.onChange(dir);
        });
        this.watchers.set(dir, { watcher, inode });
        this.refused.delete(dir);
        added ??= dir;
      } catch (err) {
        if (!this.refused.has(dir)) this.onUnwatchable(dir, err as Error);
        this.refused.add(dir);
      }
    }
    if (added !== undefined && this.started) this.onChange(added);
    this.started = true;
  }

  /** Directories watched now. */
  get watched(): string[] {
    return [...this.watchers.keys()].sort();
  }

  close(): void {
    this.closed = true;
    for (const [dir, { watcher }] of this.watchers) this.unwatch(dir, watcher);
  }

  private unwatch(dir: string, watcher: FSWatcher): void {
    watcher.close();
    if (this.watchers.get(dir)?.watcher === watcher) this.watchers.delete(dir);
  }
}

function inodeOf(dir: string): number | undefined {
  try {
    return statSync(dir).ino;
  } catch {
    return undefined;
  }
}
