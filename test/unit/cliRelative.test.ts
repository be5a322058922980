import path from "node:path";
import { relative } from "../../cli/runtime.ts";

describe("relative (paths the CLI prints)", () => {
  it("prints a path under the working directory relative to it", () => {
    expect(relative(path.join(process.cwd(), "dags"))).toBe("dags");
    expect(relative(path.join(process.cwd(), "a", "b.ts"))).toBe(path.join("a", "b.ts"));
  });

  it("prints a path outside the working directory as it is (absolute), not as ../../…", () => {
    const outside = path.join(path.parse(process.cwd()).root, "tmp", "baton-elsewhere", "dags");
    expect(relative(outside)).toBe(outside);
  });

  it("prints the working directory itself as it is", () => {
    expect(relative(process.cwd())).toBe(process.cwd());
  });
});
