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
  testTimeout: 30_000,
  // test/chaos/ runs last (see the file).
  testSequencer: "<rootDir>/test/helpers/sequencer.js",
  maxWorkers: 2,
};
