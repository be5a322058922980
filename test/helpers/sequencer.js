// Jest's own order (failed files first, then slowest first), with test/chaos/ moved to the end:
// the chaos tests load this 2-core machine for a minute or more, and run beside them, tests with
// tight timings (a 1.5 s parse timeout, a 10 s wait) flake. Last, they share it only with the
// shortest files.
import path from "node:path";
import Sequencer from "@jest/test-sequencer";

export default class ChaosLast extends Sequencer {
  async sort(tests) {
    const sorted = await super.sort(tests);
    const chaos = (test) => path.relative(test.context.config.rootDir, test.path).split(path.sep)[1] === "chaos";
    return [...sorted.filter((t) => !chaos(t)), ...sorted.filter(chaos)];
  }
}
