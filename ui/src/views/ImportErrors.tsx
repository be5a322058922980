// Every DAG file that fails to import: file (and line), when last seen, code and message, the stack
// one click away. Read-only, linked from the DAG list's banner; a fixed file is gone on reload.
import { ErrorBox, Loading, useAsync } from "../common.tsx";
import { allImportErrors } from "../data.ts";
import { formatDateTime } from "../format.ts";

export function ImportErrors() {
  const errors = useAsync(() => allImportErrors(), []);
  return (
    <section aria-labelledby="import-errors-title">
      <div class="page-head">
        <h1 id="import-errors-title">Import errors</h1>
        <span class="muted">{errors.data ? `${errors.data.length} file${errors.data.length === 1 ? "" : "s"}` : ""}</span>
        <button type="button" class="linkish small" onClick={() => errors.reload()}>
          Reload
        </button>
      </div>
      <ErrorBox error={errors.error} what="Could not load the import errors" />
      {!errors.data && !errors.error && <Loading what="import errors" />}
      {errors.data && errors.data.length === 0 && <p class="muted">Every DAG file imports.</p>}
      {errors.data && errors.data.length > 0 && (
        <div class="table-wrap">
          <table class="table import-error-table">
            <thead>
              <tr>
                <th scope="col">File</th>
                <th scope="col">Last seen</th>
                <th scope="col">Error</th>
              </tr>
            </thead>
            <tbody>
              {errors.data.map((e) => (
                <tr key={e.import_error_id} data-file={e.filename}>
                  <td>
                    <code class="wrap">
                      {e.filename}
                      {e.line ? `:${e.line}` : ""}
                    </code>
                  </td>
                  <td>{formatDateTime(e.timestamp)}</td>
                  <td>
                    <span class="code">{e.code}</span>
                    <pre class="error-text">{e.message}</pre>
                    {e.stack_trace !== e.message && (
                      <details>
                        <summary class="small">stack</summary>
                        <pre>{e.stack_trace}</pre>
                      </details>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
