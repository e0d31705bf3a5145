// API tokens: the list with filters and cursor pages, the create dialog, and
// the show-once dialog for new and rotated secrets.
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap, type Token, type TokenStatus } from '../api/client.ts';
import { isRoleAtLeast } from '../api/roles.ts';
import { PermissionBadge, ScopeChips, StatusBadge } from '../components/badges.tsx';
import { CreateTokenDialog } from '../components/create-token-dialog.tsx';
import { CursorPager, useCursorPages } from '../components/cursor-pager.tsx';
import { DataTable } from '../components/data-table.tsx';
import { RelativeTime } from '../components/relative-time.tsx';
import { SecretDialog, type ShownSecret } from '../components/secret-dialog.tsx';
import { TokenActions } from '../components/token-actions.tsx';
import { useReturnFocus } from '../components/return-focus.ts';
import { useSession } from '../session.tsx';

const PAGE_SIZE = 25;
const WARN_BEFORE_MS = 7 * 86_400_000;

type Kind = 'personal' | 'client';
const STATUS_OPTIONS: Array<[TokenStatus, string]> = [
  ['active', 'Active'],
  ['disabled', 'Disabled'],
  ['expired', 'Expired'],
  ['revoked', 'Revoked'],
];
const KIND_OPTIONS: Array<[Kind, string]> = [
  ['personal', 'Personal'],
  ['client', 'API client'],
];

function FilterSelect<T extends string>({ label, value, options, onChange }: { label: string; value: T | ''; options: Array<[T, string]>; onChange(value: T | ''): void }) {
  return (
    <label>
      {label}{' '}
      <select value={value} onChange={(e) => onChange(e.target.value as T | '')}>
        <option value="">Any</option>
        {options.map(([option, text]) => (
          <option key={option} value={option}>
            {text}
          </option>
        ))}
      </select>
    </label>
  );
}

export function TokensPage() {
  const { organization } = useSession();
  const [status, setStatus] = useState<TokenStatus | ''>('');
  const [kind, setKind] = useState<Kind | ''>('');
  const [client, setClient] = useState('');
  const [everyone, setEveryone] = useState(false);
  const pages = useCursorPages();
  const [creating, setCreating] = useState(false);
  const [shown, setShown] = useState<ShownSecret | null>(null);
  const createFocus = useReturnFocus();
  const openCreate = () => {
    createFocus.remember();
    setCreating(true);
  };
  const isAdmin = organization ? isRoleAtLeast(organization.role, 'admin') : false;
  const cursor = pages.cursor;
  const all = isAdmin && (everyone || kind === 'client');
  // The service tokens of one API client: only offered with kind = API client.
  const clientId = kind === 'client' ? client : '';
  const clients = useQuery({
    queryKey: ['clients', organization?.id],
    queryFn: async () => unwrap(await api.GET('/api/v1/clients', { params: { query: { limit: 100 } } })),
    enabled: organization !== null && kind === 'client',
  });
  const clientOptions = (clients.data?.items ?? []).map((c): [string, string] => [c.id, c.name]);

  const tokens = useQuery({
    queryKey: ['tokens', organization?.id, { status, kind, all, clientId, cursor }],
    queryFn: async () =>
      unwrap(
        await api.GET('/api/v1/tokens', {
          params: {
            query: {
              limit: PAGE_SIZE,
              ...(status ? { status } : {}),
              ...(kind ? { kind } : {}),
              ...(all ? { all: true } : {}),
              ...(clientId ? { client: clientId } : {}),
              ...(cursor ? { cursor } : {}),
            },
          },
        }),
      ),
    placeholderData: keepPreviousData,
    enabled: organization !== null,
  });
  const filtered = status !== '' || kind !== '' || everyone;
  const resetPages = pages.reset;
  const showSecret = (title: string) => (issued: { name: string; secret: string; returnTo?: HTMLElement | null }) =>
    setShown({ title, name: issued.name, secret: issued.secret, returnTo: issued.returnTo ?? createFocus.element });

  if (!organization) return <p>You are not a member of any organization yet.</p>;
  const items = tokens.data?.items ?? [];

  return (
    <section aria-labelledby="tokens-title">
      <div className="page-head">
        <h1 id="tokens-title">API tokens</h1>
        <button type="button" className="button primary" onClick={openCreate}>
          Create token
        </button>
      </div>
      <p className="muted lead">Tokens let scripts, CI jobs and tools call the API as you, limited to the scopes and resources you choose.</p>

      <div className="filters" role="group" aria-label="Filters">
        <FilterSelect
          label="Status"
          value={status}
          options={STATUS_OPTIONS}
          onChange={(value) => {
            setStatus(value);
            resetPages();
          }}
        />
        {isAdmin && (
          <>
            <FilterSelect
              label="Kind"
              value={kind}
              options={KIND_OPTIONS}
              onChange={(value) => {
                setKind(value);
                resetPages();
              }}
            />
            {kind === 'client' && (
              <FilterSelect
                label="Client"
                value={clientId}
                options={clientOptions}
                onChange={(value) => {
                  setClient(value);
                  resetPages();
                }}
              />
            )}
            <label className="choice">
              <input
                type="checkbox"
                checked={everyone}
                onChange={(e) => {
                  setEveryone(e.target.checked);
                  resetPages();
                }}
              />
              Everyone’s tokens
            </label>
          </>
        )}
      </div>

      {(tokens.error ?? clients.error) && (
        <p className="error" role="alert">
          {(tokens.error ?? clients.error)?.message}
        </p>
      )}
      {tokens.isLoading && <p role="status">Loading tokens…</p>}
      {tokens.isSuccess && items.length === 0 && pages.isFirst && (filtered ? <p className="empty">No tokens match these filters.</p> : <EmptyState onCreate={openCreate} />)}
      {items.length > 0 && <TokenTable items={items} onIssued={showSecret('Your rotated token')} />}

      <CursorPager pages={pages} nextCursor={tokens.data?.nextCursor} />

      <CreateTokenDialog open={creating} organization={organization} onOpenChange={setCreating} onIssued={showSecret('Your new token')} onCloseAutoFocus={createFocus.onCloseAutoFocus} />
      <SecretDialog shown={shown} onClose={() => setShown(null)} />
    </section>
  );
}

function EmptyState({ onCreate }: { onCreate(): void }) {
  return (
    <div className="empty">
      <h2>No API tokens yet</h2>
      <p>
        An API token is a password for programs. Give each script or integration its own token with only the scopes it needs, an expiry date, and if you like the
        resources it may reach. You see the secret once, when you create it; revoke it here the moment it is no longer needed or may have leaked.
      </p>
      <button type="button" className="button primary" onClick={onCreate}>
        Create your first token
      </button>
    </div>
  );
}

function Expiry({ token }: { token: Token }) {
  if (token.expiresAt === null) return <span className="muted">Never</span>;
  const soon = token.status === 'active' && new Date(token.expiresAt).getTime() - Date.now() < WARN_BEFORE_MS;
  return <RelativeTime at={token.expiresAt} className={soon ? 'warn' : undefined} />;
}

export function TokenTable({ items, onIssued }: { items: Token[]; onIssued(issued: { name: string; secret: string; returnTo: HTMLElement | null }): void }) {
  return (
    <DataTable caption="API tokens" columns={['Name', 'Kind', 'Status', 'Permission', 'Scopes', 'Resources', 'Last used', 'Expires', 'hidden:Actions']}>
      {items.map((token) => (
        <tr key={token.id} data-token-id={token.id}>
          <th scope="row">
            <span className="token-name">{token.name}</span>
            <code className="hint">{token.hint}</code>
          </th>
          <td>{token.kind === 'client' ? 'API client' : 'Personal'}</td>
          <td>
            <StatusBadge status={token.status} />
            {token.graceEndsAt && token.status === 'active' && (
              <span className="badge rotated" title="Rotated: this old secret keeps working until its grace period ends">
                Rotated
              </span>
            )}
          </td>
          <td>
            <PermissionBadge permission={token.permission} />
          </td>
          <td>
            <ScopeChips scopes={token.scopes} />
          </td>
          <td>
            {token.resources.length === 0 ? (
              // A token limited to resources that were all deleted reaches none, not all.
              <span className="muted">{token.resourcesLimited ? 'None (its resources were deleted)' : 'All'}</span>
            ) : (
              <ol className="ranked-inline">
                {token.resources.map((r) => (
                  <li key={r.id}>{r.name}</li>
                ))}
              </ol>
            )}
          </td>
          <td>{token.lastUsedAt ? <RelativeTime at={token.lastUsedAt} /> : <span className="muted">Never</span>}</td>
          <td>
            <Expiry token={token} />
          </td>
          <td>
            <TokenActions token={token} onIssued={onIssued} />
          </td>
        </tr>
      ))}
    </DataTable>
  );
}
