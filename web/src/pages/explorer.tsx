// Explorer: SQL (DuckDB) over the account's `executions` and `contacts` tables in the
// lake, in a CodeMirror editor with the tables' columns for completion; the result as a
// grid, a CSV download and a chart.
import { useMemo, useRef, useState } from 'react';
import { useSearchParams } from 'react-router';
import { useMutation } from '@tanstack/react-query';
import CodeMirror, { EditorView, keymap, Prec } from '@uiw/react-codemirror';
import { sql as sqlLang, PostgreSQL } from '@codemirror/lang-sql';
import { explorer } from '../api/endpoints';
import type { QueryResult } from '../api/types';
import { PageHeader, ProblemBanner, SelectField } from '../components/ui';
import { ResultChart, ResultTable, downloadCsv } from '../components/results';

/** The lake's columns (api/src/explorer.rs), for completion and the reference below. */
export const TABLES: Record<string, string[]> = {
  executions: [
    'execution_id',
    'account_id',
    'contact_id',
    'connection_id',
    'helper',
    'category',
    'status',
    'message',
    'requested_at',
    'started_at',
    'completed_at',
    'duration_ms',
    'output_json',
    'changes_json',
    'error_kind',
    'error_message',
    'source',
    'helper_id',
  ],
  contacts: [
    'account_id',
    'connection_id',
    'platform',
    'contact_id',
    'email',
    'first_name',
    'last_name',
    'fields_json',
    'tags_json',
    'owner_id',
    'crm_updated_at',
    'observed_at',
    'source',
  ],
};

const EXAMPLES: [string, string][] = [
  ['Runs by helper and status', 'select helper, status, count(*) as runs\nfrom executions\ngroup by all\norder by runs desc'],
  ['Latest executions', 'select requested_at, helper, contact_id, status, duration_ms\nfrom executions\norder by requested_at desc\nlimit 50'],
  ['Runs per day', "select strftime(requested_at, '%Y-%m-%d') as day, count(*) as runs\nfrom executions\ngroup by 1\norder by 1"],
  ['Failures by error', "select error_kind, count(*) as failures\nfrom executions\nwhere status = 'failed'\ngroup by 1\norder by 2 desc"],
  ['Contacts', 'select contact_id, email, first_name, last_name, tags_json\nfrom contacts\nlimit 100'],
];

export function ExplorerPage() {
  const [params] = useSearchParams();
  const [sql, setSql] = useState(params.get('sql') ?? EXAMPLES[0][1]);
  const sqlRef = useRef(sql);
  sqlRef.current = sql;
  const m = useMutation<QueryResult, unknown, string>({ mutationFn: (s) => explorer.query(s) });
  const run = () => {
    if (sqlRef.current.trim()) m.mutate(sqlRef.current);
  };
  const runRef = useRef(run);
  runRef.current = run;
  const extensions = useMemo(
    () => [
      sqlLang({ dialect: PostgreSQL, schema: TABLES, upperCaseKeywords: false }),
      EditorView.lineWrapping,
      EditorView.contentAttributes.of({ 'aria-label': 'SQL query', 'aria-describedby': 'sql-help' }),
      Prec.highest(
        keymap.of([
          {
            key: 'Mod-Enter',
            run: () => {
              runRef.current();
              return true;
            },
          },
        ]),
      ),
    ],
    [],
  );
  const r = m.data;
  return (
    <>
      <PageHeader title="Explorer" />
      <p className="muted" id="sql-help">
        SQL (DuckDB) over your account’s <code>executions</code> and <code>contacts</code>. Results reach the lake a few seconds after an
        execution finishes. Ctrl+Enter runs the query.
      </p>
      <div className="explorer-bar">
        <SelectField
          label="Examples"
          value=""
          onChange={(e) => {
            const ex = EXAMPLES.find(([n]) => n === e.target.value);
            if (ex) setSql(ex[1]);
          }}
        >
          <option value="">Pick an example…</option>
          {EXAMPLES.map(([n]) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </SelectField>
      </div>
      <div className="editor" data-testid="sql-editor">
        <div className="editor-label" id="sql-label">
          SQL query
        </div>
        <CodeMirror value={sql} onChange={setSql} extensions={extensions} minHeight="140px" maxHeight="420px" basicSetup={{ foldGutter: false }} aria-labelledby="sql-label" />
      </div>
      <div className="form-actions">
        <button type="button" className="btn btn-primary" onClick={run} disabled={m.isPending}>
          {m.isPending ? 'Running…' : 'Run query'}
        </button>
        {r && (
          <button type="button" className="btn" onClick={() => downloadCsv(r, 'mfh-query.csv')}>
            Download CSV
          </button>
        )}
      </div>
      <ProblemBanner error={m.error} title="The query failed" />
      {r && (
        <section aria-labelledby="results-h" className="results">
          <h2 id="results-h">
            Results <span className="muted small">({r.rows.length} rows{r.truncated ? ', cut short: add a limit or aggregate' : ''})</span>
          </h2>
          {r.rows.length === 0 ? <p className="muted">No rows.</p> : <ResultTable r={r} />}
          {r.rows.length > 0 && (
            <section aria-labelledby="chart-h" className="card">
              <h2 id="chart-h">Chart</h2>
              <ResultChart key={r.columns.join(',') + r.rows.length} r={r} title="Chart of the query result" />
            </section>
          )}
        </section>
      )}
      <details className="card schema-ref">
        <summary>Tables and columns</summary>
        {Object.entries(TABLES).map(([t, cols]) => (
          <p key={t}>
            <code>{t}</code>: {cols.join(', ')}
          </p>
        ))}
      </details>
    </>
  );
}
