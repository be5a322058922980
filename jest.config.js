/** Jest runs the TypeScript sources as ES modules through @swc/jest. */
export default {
  testEnvironment: "node",
  extensionsToTreatAsEsm: [".ts"],
  transform: {
    "^.+\\.ts$": [
      "@swc/jest",
      {
        jsc: { parser: { syntax: "typescript" }, target: "es2022", experimental: { keepImportAttributes: true } },
        module: { type: "es6" },
      },
    ],
  },
  testMatch: ["<rootDir>/test/**/*.test.ts"],
  testPathIgnorePatterns: ["/node_modules/", "/test/fixtures/"],
  modulePathIgnorePatterns: ["<rootDir>/bench/results/"],
  // CLI tests start several `baton` processes in one test (1.5–4 s each on a busy 2-core machine);
  // every wait inside a test has its own, shorter deadline.
  testTimeout: 60_000,
  // test/chaos/ runs last (see the file).
  testSequencer: "<rootDir>/test/helpers/sequencer.js",
  maxWorkers: 2,
};
