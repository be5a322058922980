-- The local modules each DAG file imports, so editing one of them re-parses the file.
ALTER TABLE dag_file ADD COLUMN deps JSON NULL;
