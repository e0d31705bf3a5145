// The organization's audit log: who did what to which target, newest first,
// filtered by action, actor or target, a page at a time.
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../api/client.ts';
import { isRoleAtLeast } from '../api/roles.ts';
import { CursorPager, useCursorPages } from '../components/cursor-pager.tsx';
import { ErrorAlert } from '../components/dialog-footer.tsx';
import { DataTable } from '../components/data-table.tsx';
import { RelativeTime } from '../components/relative-time.tsx';
import { useSession } from '../session.tsx';

interface Filters {
  action: string;
  actor: string;
  target: string;
}

const EMPTY: Filters = { action: '', actor: '', target: '' };

export function AuditPage() {
  const { organization } = useSession();
  const pages = useCursorPages();
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const events = useQuery({
    queryKey: ['audit', organization?.id, filters, pages.cursor],
    queryFn: async () => {
      const query = Object.fromEntries(Object.entries(filters).filter(([, value]) => value.trim() !== '').map(([key, value]) => [key, value.trim()]));
      return unwrap(await api.GET('/api/v1/audit', { params: { query: { limit: 50, ...query, ...(pages.cursor ? { cursor: pages.cursor } : {}) } } }));
    },
    placeholderData: keepPreviousData,
    enabled: organization !== null,
  });
  if (!organization) return null;
  if (!isRoleAtLeast(organization.role, 'admin')) return <p>Only admins and owners read the audit log.</p>;

  const apply = (event: FormEvent) => {
    event.preventDefault();
    pages.reset();
    setFilters(draft);
  };
  const input = (key: keyof Filters, label: string, placeholder: string) => (
    <label>
      {label}{' '}
      <input type="text" value={draft[key]} placeholder={placeholder} onChange={(e) => setDraft({ ...draft, [key]: e.target.value })} />
    </label>
  );

  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit log</h1>
      <form className="filters" onSubmit={apply} aria-label="Filters">
        {input('action', 'Action', 'token.revoked')}
        {input('actor', 'Actor', 'usr_… or cli_…')}
        {input('target', 'Target', 'tok_…')}
        <button type="submit" className="button">
          Filter
        </button>
      </form>
      <ErrorAlert error={events.error} />
      {events.data && events.data.items.length === 0 && <p className="empty">No events match.</p>}
      {events.data && events.data.items.length > 0 && (
        <DataTable caption="Audit events" columns={['When', 'Action', 'Actor', 'Target', 'From']}>
          {events.data.items.map((event) => (
            <tr key={event.id}>
              <td>
                <RelativeTime at={event.at} />
              </td>
              <th scope="row">
                <code>{event.action}</code>
              </th>
              <td>
                {event.actor.type}
                {event.actor.id && <code className="hint"> {event.actor.id}</code>} <span className="muted">via {event.authMethod}</span>
              </td>
              <td>{event.target ? <code className="hint">{event.target.id}</code> : <span className="muted">—</span>}</td>
              <td className="muted">{event.ip ?? '—'}</td>
            </tr>
          ))}
        </DataTable>
      )}
      <CursorPager pages={pages} nextCursor={events.data?.nextCursor} />
    </section>
  );
}
