// What tests ask of operating-system processes they started (Linux /proc).
import { readFileSync } from "node:fs";

/** Whether a process still runs: gone, or a zombie waiting for init to reap it, runs nothing. */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}
