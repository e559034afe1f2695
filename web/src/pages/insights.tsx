// Insights: executions per day, success rate per helper, the slowest and the most-failing
// helpers, each an explorer query over the lake's `executions` table.
import { useState } from 'react';
import { Link } from 'react-router';
import { useQuery } from '@tanstack/react-query';
import { explorer } from '../api/endpoints';
import type { QueryResult } from '../api/types';
import { Loading, PageHeader, ProblemBanner, SelectField, formatDuration } from '../components/ui';
import { ResultChart } from '../components/results';
import { useHelpers } from '../queries';

const since = (days: number) => `requested_at >= now() - interval ${days} day`;

const QUERIES = {
  perDay: (d: number) => `select strftime(requested_at, '%Y-%m-%d') as day,
  count(*) filter (where status = 'succeeded') as succeeded,
  count(*) filter (where status = 'failed') as failed
from executions
where ${since(d)}
group by 1
order by 1`,
  successRate: (d: number) => `select helper, helper_id, count(*) as runs,
  round(100.0 * count(*) filter (where status = 'succeeded') / count(*), 1) as success_pct
from executions
where ${since(d)}
group by all
order by runs desc
limit 20`,
  slowest: (d: number) => `select helper, helper_id, count(*) as runs,
  round(avg(duration_ms)) as avg_ms,
  round(quantile_cont(duration_ms, 0.95)) as p95_ms
from executions
where ${since(d)} and duration_ms is not null
group by all
order by p95_ms desc
limit 10`,
  failing: (d: number) => `select helper, helper_id,
  count(*) filter (where status = 'failed') as failures, count(*) as runs,
  arg_max(error_kind, requested_at) filter (where status = 'failed') as last_error
from executions
where ${since(d)}
group by all
having count(*) filter (where status = 'failed') > 0
order by failures desc
limit 10`,
};

function useInsight(sql: string) {
  return useQuery({ queryKey: ['explorer', sql], queryFn: () => explorer.query(sql), staleTime: 15_000, refetchInterval: 30_000 });
}

function Panel({ title, sql, children }: { title: string; sql: string; children: (r: QueryResult) => React.ReactNode }) {
  const q = useInsight(sql);
  const id = title.toLowerCase().replace(/\W+/g, '-');
  return (
    <section className="card insight" aria-labelledby={id}>
      <div className="insight-head">
        <h2 id={id}>{title}</h2>
        <Link className="small" to={`/explorer?sql=${encodeURIComponent(sql)}`}>
          Open in explorer
        </Link>
      </div>
      {q.isPending ? (
        <Loading />
      ) : q.isError ? (
        <ProblemBanner error={q.error} />
      ) : q.data.rows.length === 0 ? (
        <p className="muted">No executions in this period yet.</p>
      ) : (
        children(q.data)
      )}
    </section>
  );
}

export function InsightsPage() {
  const [days, setDays] = useState(30);
  const helpers = useHelpers();
  const name = (helper: unknown, id: unknown) => {
    const saved = typeof id === 'string' ? helpers.data?.items.find((h) => h.helper_id === id) : undefined;
    return saved ? saved.name : String(helper);
  };
  /** Rows keyed by helper: "name (type)" as the label column. */
  const labelled = (r: QueryResult, valueCols: string[]): QueryResult => {
    const hi = r.columns.indexOf('helper');
    const ii = r.columns.indexOf('helper_id');
    const cols = valueCols.map((c) => r.columns.indexOf(c));
    return {
      columns: ['helper', ...valueCols],
      rows: r.rows.map((row) => [name(row[hi], row[ii]), ...cols.map((c) => row[c])]),
      truncated: r.truncated,
    };
  };
  return (
    <>
      <PageHeader title="Insights">
        <SelectField label="Period" value={String(days)} onChange={(e) => setDays(Number(e.target.value))}>
          <option value="7">Last 7 days</option>
          <option value="30">Last 30 days</option>
          <option value="90">Last 90 days</option>
        </SelectField>
      </PageHeader>
      <div className="insight-grid">
        <Panel title="Executions per day" sql={QUERIES.perDay(days)}>
          {(r) => <ResultChart r={r} kind="bar" chooser={false} title="Executions per day, succeeded and failed" colors={{ succeeded: '#1a9e6f', failed: '#d9480f' }} />}
        </Panel>
        <Panel title="Success rate per helper" sql={QUERIES.successRate(days)}>
          {(r) => {
            const t = labelled(r, ['runs', 'success_pct']);
            return (
              <>
                <ResultChart r={{ ...t, columns: ['helper', 'success %'], rows: t.rows.map((x) => [x[0], x[2]]) }} chooser={false} title="Success rate per helper" height={220} />
                <div className="table-wrap"><table className="table compact">
                  <thead>
                    <tr>
                      <th scope="col">Helper</th>
                      <th scope="col" className="num">
                        Runs
                      </th>
                      <th scope="col" className="num">
                        Succeeded
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {t.rows.map((x, i) => (
                      <tr key={i}>
                        <td>{String(x[0])}</td>
                        <td className="num">{String(x[1])}</td>
                        <td className="num">{String(x[2])}%</td>
                      </tr>
                    ))}
                  </tbody>
                </table></div>
              </>
            );
          }}
        </Panel>
        <Panel title="Slowest helpers" sql={QUERIES.slowest(days)}>
          {(r) => {
            const t = labelled(r, ['runs', 'avg_ms', 'p95_ms']);
            return (
              <div className="table-wrap"><table className="table compact">
                <thead>
                  <tr>
                    <th scope="col">Helper</th>
                    <th scope="col" className="num">
                      Runs
                    </th>
                    <th scope="col" className="num">
                      Average
                    </th>
                    <th scope="col" className="num">
                      95th percentile
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {t.rows.map((x, i) => (
                    <tr key={i}>
                      <td>{String(x[0])}</td>
                      <td className="num">{String(x[1])}</td>
                      <td className="num">{formatDuration(Number(x[2]))}</td>
                      <td className="num">{formatDuration(Number(x[3]))}</td>
                    </tr>
                  ))}
                </tbody>
              </table></div>
            );
          }}
        </Panel>
        <Panel title="Most-failing helpers" sql={QUERIES.failing(days)}>
          {(r) => {
            const t = labelled(r, ['failures', 'runs', 'last_error']);
            return (
              <div className="table-wrap"><table className="table compact">
                <thead>
                  <tr>
                    <th scope="col">Helper</th>
                    <th scope="col" className="num">
                      Failures
                    </th>
                    <th scope="col" className="num">
                      Runs
                    </th>
                    <th scope="col">Latest error</th>
                  </tr>
                </thead>
                <tbody>
                  {t.rows.map((x, i) => (
                    <tr key={i}>
                      <td>{String(x[0])}</td>
                      <td className="num">{String(x[1])}</td>
                      <td className="num">{String(x[2])}</td>
                      <td>{x[3] === null ? '—' : String(x[3])}</td>
                    </tr>
                  ))}
                </tbody>
              </table></div>
            );
          }}
        </Panel>
      </div>
    </>
  );
}
