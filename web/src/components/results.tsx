// A query result as a grid, as CSV, and as a chart (recharts) of one label column
// against one or more numeric columns.
import { useMemo, useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { QueryResult } from '../api/types';
import { SelectField } from './ui';

const COLORS = ['#2f5bea', '#1a9e6f', '#d9480f', '#7048e8', '#c2255c', '#0b7285'];

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function ResultTable({ r, label = 'Query results' }: { r: QueryResult; label?: string }) {
  return (
    <div className="table-wrap grid-wrap" tabIndex={0} aria-label={`${label}, scrollable`}>
      <table className="table grid" aria-label={label}>
        <thead>
          <tr>
            {r.columns.map((c, i) => (
              <th scope="col" key={i}>
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {r.rows.map((row, i) => (
            <tr key={i}>
              {row.map((v, j) => (
                <td key={j} className={typeof v === 'number' ? 'num' : undefined}>
                  {v === null ? <span className="null">null</span> : cell(v)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** RFC 4180 CSV of a result. */
export function toCsv(r: QueryResult): string {
  const esc = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return [r.columns.map(esc).join(','), ...r.rows.map((row) => row.map((v) => esc(cell(v))).join(','))].join('\r\n') + '\r\n';
}

export function downloadCsv(r: QueryResult, name = 'query.csv') {
  const url = URL.createObjectURL(new Blob([toCsv(r)], { type: 'text/csv;charset=utf-8' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Numbers, or digits in text (DuckDB's HUGEINT, e.g. a sum, arrives as text) unless the
 * column names an id (contact_id "3" is a label, not a quantity). */
const isNumeric = (r: QueryResult, i: number) =>
  r.rows.length > 0 &&
  r.rows.some((row) => row[i] !== null) &&
  r.rows.every(
    (row) =>
      row[i] === null ||
      typeof row[i] === 'number' ||
      (typeof row[i] === 'string' && !/(^|_)id$/i.test(r.columns[i]) && /^-?\d+(\.\d+)?$/.test(row[i] as string)),
  );

/** Picks a label column (the first non-numeric) and the numeric ones. */
export function chartColumns(r: QueryResult): { x: number; ys: number[] } {
  const numeric = r.columns.map((_, i) => isNumeric(r, i));
  const x = numeric.findIndex((n) => !n);
  const ys = numeric.map((n, i) => (n && i !== x ? i : -1)).filter((i) => i >= 0);
  return { x: x >= 0 ? x : -1, ys };
}

export function ResultChart({
  r,
  kind: initialKind = 'bar',
  height = 280,
  chooser = true,
  title,
  colors = {},
}: {
  r: QueryResult;
  kind?: 'bar' | 'line';
  height?: number;
  chooser?: boolean;
  title: string;
  /** Colors by column name (e.g. failed in red); others take the palette's. */
  colors?: Record<string, string>;
}) {
  const auto = useMemo(() => chartColumns(r), [r]);
  const [kind, setKind] = useState(initialKind);
  const [x, setX] = useState<number>(auto.x);
  const [y, setY] = useState<number | 'all'>('all');
  const ys = y === 'all' ? auto.ys : [y];
  if (auto.ys.length === 0 || r.rows.length === 0) return <p className="muted">Nothing to chart: the result needs a numeric column.</p>;
  const data = r.rows.map((row, i) => {
    const o: Record<string, unknown> = { __x: x >= 0 ? cell(row[x]) : String(i + 1) };
    for (const j of auto.ys) o[r.columns[j]] = row[j] === null ? null : Number(row[j]);
    return o;
  });
  const Chart = kind === 'line' ? LineChart : BarChart;
  return (
    <figure className="chart" aria-label={title}>
      {chooser && (
        <div className="chart-controls">
          <SelectField label="Chart" value={kind} onChange={(e) => setKind(e.target.value as 'bar' | 'line')}>
            <option value="bar">Bars</option>
            <option value="line">Line</option>
          </SelectField>
          <SelectField label="Labels" value={String(x)} onChange={(e) => setX(Number(e.target.value))}>
            <option value="-1">Row number</option>
            {r.columns.map((c, i) => (
              <option key={i} value={i}>
                {c}
              </option>
            ))}
          </SelectField>
          <SelectField label="Values" value={String(y)} onChange={(e) => setY(e.target.value === 'all' ? 'all' : Number(e.target.value))}>
            <option value="all">All numeric columns</option>
            {auto.ys.map((i) => (
              <option key={i} value={i}>
                {r.columns[i]}
              </option>
            ))}
          </SelectField>
        </div>
      )}
      <ResponsiveContainer width="100%" height={height}>
        <Chart data={data} margin={{ top: 8, right: 8, bottom: 8, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e3e7ef" />
          <XAxis dataKey="__x" tick={{ fontSize: 12 }} />
          <YAxis tick={{ fontSize: 12 }} width={48} />
          <Tooltip />
          {ys.length > 1 && <Legend />}
          {ys.map((j, k) =>
            kind === 'line' ? (
              <Line key={j} type="monotone" dataKey={r.columns[j]} stroke={colors[r.columns[j]] ?? COLORS[k % COLORS.length]} strokeWidth={2} dot={false} isAnimationActive={false} />
            ) : (
              <Bar key={j} dataKey={r.columns[j]} fill={colors[r.columns[j]] ?? COLORS[k % COLORS.length]} maxBarSize={56} isAnimationActive={false} />
            ),
          )}
        </Chart>
      </ResponsiveContainer>
      <figcaption className="sr-only">{title}</figcaption>
    </figure>
  );
}
