// The tag picker of the generated config form: an rjsf widget for the string fields that
// hold a tag id (`uiFor` in ConfigForm maps them by their key). The id stays an ordinary
// text input, so any id can be typed; next to it a select lists the selected connection's
// tags by name (grouped by category) and choosing one puts its id in the input. Under it
// the tag the id names. When the connection cannot list its tags (a 409 for a CRM without
// a catalog, refused credentials, an unavailable CRM) only the text input is left, with
// the API's reason beside it.
import { createContext, Fragment, useContext, useMemo, type ReactNode } from 'react';
import { ariaDescribedByIds, type WidgetProps } from '@rjsf/utils';
import { errorMessage } from '../api/client';
import type { TagView } from '../api/types';
import { useConnectionTags } from '../queries';

/** The connection whose tags the pickers list (`sandbox` or a `conn_…` id). */
export const TagSource = createContext<string | undefined>(undefined);

interface Group {
  category: string | null;
  tags: { tag: TagView; label: string }[];
}

/** The tags by category (tags without one first), each sorted by name; a name the group
 * has twice carries its id so the two can be told apart. */
function grouped(tags: TagView[]): Group[] {
  const byCat = new Map<string | null, TagView[]>();
  for (const t of tags) {
    const c = t.category?.trim() || null;
    byCat.set(c, [...(byCat.get(c) ?? []), t]);
  }
  const cats = [...byCat.keys()].sort((a, b) => (a === null ? -1 : b === null ? 1 : a.localeCompare(b)));
  return cats.map((category) => {
    const list = [...(byCat.get(category) ?? [])].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    const seen = new Map<string, number>();
    for (const t of list) seen.set(t.name, (seen.get(t.name) ?? 0) + 1);
    return { category, tags: list.map((tag) => ({ tag, label: (seen.get(tag.name) ?? 0) > 1 ? `${tag.name} (${tag.id})` : tag.name })) };
  });
}

/** "Tag ids-1" (rjsf's array item title) → "Tag ids 1". */
function fieldName(label: string | undefined, id: string): string {
  return (label || id).replace(/-(\d+)$/, ' $1');
}

export function TagWidget(props: WidgetProps) {
  const { id, htmlName, value, required, disabled, readonly, autofocus, placeholder, onChange, onBlur, onFocus, options, rawErrors, label } = props;
  const connectionId = useContext(TagSource);
  const q = useConnectionTags(connectionId);
  const groups = useMemo(() => (q.data ? grouped(q.data) : []), [q.data]);
  const current = value === undefined || value === null ? '' : String(value);
  const match = current.trim() ? q.data?.find((t) => t.id === current.trim()) : undefined;
  const noteId = `${id}__tags`;
  const name = fieldName(label, id);
  const off = disabled || readonly;
  const set = (v: string) => onChange(v === '' ? options.emptyValue : v);

  let note: ReactNode = null;
  if (!connectionId) note = null;
  else if (q.isPending) note = <span className="muted">Loading the CRM’s tags…</span>;
  else if (q.isError) note = <>Tag list unavailable: {errorMessage(q.error)}</>;
  else if (groups.length === 0) note = <>This CRM has no tags to choose from; type a tag id.</>;
  else if (match)
    note = (
      <>
        <strong>{match.name}</strong>
        {match.category ? <> · {match.category}</> : null}
      </>
    );
  else if (current.trim()) note = <>No tag with this id in the CRM’s list; it is kept as typed.</>;

  return (
    <div className="tag-picker">
      <div className="tag-picker-controls">
        <input
          id={id}
          name={htmlName || id}
          className="form-control tag-picker-id"
          type="text"
          value={current}
          required={required}
          disabled={disabled}
          readOnly={readonly}
          autoFocus={autofocus}
          placeholder={placeholder || 'Tag id'}
          inputMode="text"
          autoComplete="off"
          spellCheck={false}
          aria-invalid={rawErrors && rawErrors.length > 0 ? true : undefined}
          aria-describedby={`${ariaDescribedByIds(id)} ${noteId}`}
          onChange={(e) => set(e.target.value)}
          onBlur={(e) => onBlur(id, e.target.value)}
          onFocus={(e) => onFocus(id, e.target.value)}
        />
        {q.isSuccess && groups.length > 0 && (
          <select
            className="form-control tag-picker-select"
            aria-label={`Choose a tag for ${name}`}
            value={match ? match.id : ''}
            disabled={off}
            onChange={(e) => {
              if (e.target.value) set(e.target.value);
            }}
          >
            <option value="">{match ? 'Choose another tag…' : 'Choose a tag…'}</option>
            {groups.map((g) => {
              const options = g.tags.map(({ tag, label: text }) => (
                <option key={tag.id} value={tag.id}>
                  {text}
                </option>
              ));
              return g.category === null ? (
                <Fragment key="">{options}</Fragment>
              ) : (
                <optgroup key={g.category} label={g.category}>
                  {options}
                </optgroup>
              );
            })}
          </select>
        )}
      </div>
      <div className="hint tag-picker-note" id={noteId} aria-live="polite">
        {note}
      </div>
    </div>
  );
}
