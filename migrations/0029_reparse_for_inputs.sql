-- Parse every DAG file again once, so files recorded before their hash covered every input of
-- their parse (local modules a failed load never reported, paths that did not resolve yet,
-- globs of dynamic imports, the package.json of each package a bundle used) record those
-- inputs; until then an edit to one of them would not be seen (the processor skips files
-- whose hash it knows).
UPDATE dag_file SET content_hash = REPEAT('0', 64);
