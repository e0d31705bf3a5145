// The create dialog: name, expiry, scopes (a preset or individual ones, only
// those the person's role may grant), ranked resources and optional limits.
// The server has the last word: its `errors[]` are shown next to their fields.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Dialog } from 'radix-ui';
import { useState, type FormEvent } from 'react';
import { ApiProblem, api, unwrap, type Catalog, type CreateTokenInput, type Organization, type Resource } from '../api/client.ts';
import { isRoleAtLeast } from '../api/roles.ts';
import { DialogFooter, ErrorAlert } from './dialog-footer.tsx';
import { Field } from './field.tsx';
import { ResourcePicker } from './resource-picker.tsx';

const DAY_MS = 86_400_000;
const EXPIRY_PRESETS = [7, 30, 90, 365];

interface Props {
  open: boolean;
  organization: Organization;
  onOpenChange(open: boolean): void;
  /** Receives the plaintext once; it is never returned into the query cache. */
  onIssued(issued: { name: string; secret: string }): void;
  onCloseAutoFocus(event: Event): void;
  /** Issue a service token of this API client instead of a personal token. */
  clientId?: string;
}

export function CreateTokenDialog({ open, organization, onOpenChange, onIssued, onCloseAutoFocus, clientId }: Props) {
  return (
    <Dialog.Root open={open} onOpenChange={onOpenChange}>
      <Dialog.Portal>
        <Dialog.Overlay className="overlay" />
        <Dialog.Content className="dialog wide" aria-describedby={undefined} onCloseAutoFocus={onCloseAutoFocus}>
          <Dialog.Title>{clientId ? 'Issue a service token' : 'Create an API token'}</Dialog.Title>
          {open && <CreateTokenForm organization={organization} clientId={clientId} onDone={() => onOpenChange(false)} onIssued={onIssued} />}
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}

function daysUntil(date: string): number {
  return Math.ceil((new Date(`${date}T23:59:59`).getTime() - Date.now()) / DAY_MS);
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function CreateTokenForm({ organization, clientId, onDone, onIssued }: { organization: Organization; clientId?: string; onDone(): void; onIssued: Props['onIssued'] }) {
  const queryClient = useQueryClient();
  const catalog = useQuery({ queryKey: ['catalog', organization.id], queryFn: async () => unwrap(await api.GET('/api/v1/scopes')) });
  const resources = useQuery({
    queryKey: ['resources', organization.id],
    queryFn: async () => unwrap(await api.GET('/api/v1/resources', { params: { query: { limit: 100 } } })).items,
  });
  const policy = organization.tokenPolicy;
  const presetsAllowed = EXPIRY_PRESETS.filter((days) => days <= policy.maxLifetimeDays);

  const [name, setName] = useState('');
  const [expiry, setExpiry] = useState<string>(String(presetsAllowed.includes(30) ? 30 : (presetsAllowed.at(-1) ?? 'custom')));
  const [customDate, setCustomDate] = useState('');
  const [scopes, setScopes] = useState<Set<string> | null>(null);
  const [preset, setPreset] = useState<string | null>(null);
  const [chosen, setChosen] = useState<Resource[]>([]);
  const [allowedIps, setAllowedIps] = useState('');
  const [rateLimit, setRateLimit] = useState('');
  const [rateWindow, setRateWindow] = useState('60');
  const [quota, setQuota] = useState('');

  const grantable = (catalog.data?.scopes ?? []).filter((scope) => isRoleAtLeast(organization.role, scope.minRole));
  const grantableNames = new Set(grantable.map((scope) => scope.name));
  const presets = (catalog.data?.presets ?? []).filter((p) => p.scopes.every((s) => grantableNames.has(s)));
  // Until the person picks, the catalog's default preset (if they may grant it) is chosen.
  const defaultPreset = presets.find((p) => p.name === catalog.data?.defaultPreset) ?? presets[0];
  const activePreset = preset ?? (scopes === null ? (defaultPreset?.name ?? 'custom') : 'custom');
  const selected = scopes ?? new Set(defaultPreset?.scopes ?? []);

  const create = useMutation({
    mutationFn: async () => {
      const body: CreateTokenInput = { name, scopes: [...selected].sort(), resources: chosen.map((r) => r.id), expiresInDays: expiresInDays() };
      const ips = allowedIps.split(/[\s,]+/).filter(Boolean);
      if (ips.length > 0) body.allowedIps = ips;
      if (rateLimit.trim() !== '') body.rateLimit = { limit: Number(rateLimit), windowSeconds: Number(rateWindow) };
      if (quota.trim() !== '') body.remaining = Number(quota);
      const answer = clientId
        ? await api.POST('/api/v1/clients/{id}/tokens', { params: { path: { id: clientId } }, body })
        : await api.POST('/api/v1/tokens', { body });
      const { token, ...issued } = unwrap(answer);
      onIssued({ name: issued.name, secret: token });
      // Only the secret-free view reaches the mutation state.
      return issued;
    },
    onSuccess: async () => {
      onDone();
      await queryClient.invalidateQueries({ queryKey: [clientId ? 'client-tokens' : 'tokens'] });
    },
  });

  function expiresInDays(): number | null {
    if (expiry === 'never') return null;
    if (expiry === 'custom') return customDate ? daysUntil(customDate) : 0;
    return Number(expiry);
  }

  const problem = create.error instanceof ApiProblem ? create.error : null;
  const fieldError = (field: string) => problem?.fieldMessage(field);
  const shownElsewhere = new Set(['name', 'scopes', 'resources', 'expiresInDays', 'allowedIps', 'rateLimit', 'remaining']);
  const generalError = create.error && (!problem || problem.errors.every((e) => !shownElsewhere.has(e.field.replace(/^\//, '').split('/')[0] ?? ''))) ? create.error.message : null;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };

  if (catalog.isLoading) return <p role="status">Loading the scope catalog…</p>;
  if (catalog.error) return <ErrorAlert error={catalog.error} />;

  return (
    <form onSubmit={submit} noValidate className="form">
      <Field label="Name" hint="Letters, digits, spaces, dots, dashes and underscores; say where it is used, e.g. “CI deploy”." error={fieldError('name')}>
        <input type="text" name="name" autoComplete="off" required maxLength={64} value={name} onChange={(e) => setName(e.target.value)} />
      </Field>

      <fieldset className="field">
        <legend>Expiration</legend>
        <div className="choices">
          {presetsAllowed.map((days) => (
            <label key={days} className="choice">
              <input type="radio" name="expiry" value={String(days)} checked={expiry === String(days)} onChange={() => setExpiry(String(days))} />
              {days} days
            </label>
          ))}
          <label className="choice">
            <input type="radio" name="expiry" value="custom" checked={expiry === 'custom'} onChange={() => setExpiry('custom')} />
            Custom date
          </label>
          {policy.allowNoExpiry && (
            <label className="choice">
              <input type="radio" name="expiry" value="never" checked={expiry === 'never'} onChange={() => setExpiry('never')} />
              No expiration
            </label>
          )}
        </div>
        {expiry === 'custom' && (
          <Field label="Expires on">
            <input type="date" min={isoDate(Date.now() + DAY_MS)} max={isoDate(Date.now() + policy.maxLifetimeDays * DAY_MS)} value={customDate} onChange={(e) => setCustomDate(e.target.value)} />
          </Field>
        )}
        <p className="muted">Your organization allows at most {policy.maxLifetimeDays} days{policy.allowNoExpiry ? ', or no expiration' : ''}.</p>
        {fieldError('expiresInDays') && <p className="field-error">{fieldError('expiresInDays')}</p>}
      </fieldset>

      <ScopePicker
        catalog={catalog.data as Catalog}
        grantable={grantable}
        presets={presets}
        activePreset={activePreset}
        selected={selected}
        error={fieldError('scopes')}
        onPreset={(name, presetScopes) => {
          setPreset(name);
          setScopes(new Set(presetScopes));
        }}
        onToggle={(scope, on) => {
          const next = new Set(selected);
          if (on) next.add(scope);
          else next.delete(scope);
          setPreset('custom');
          setScopes(next);
        }}
      />

      <ResourcePicker resources={resources.data ?? []} value={chosen} onChange={setChosen} error={fieldError('resources')} />

      <details className="field" open={policy.requireIpAllowlist || undefined}>
        <summary>Optional restrictions: IP allowlist, rate limit, quota</summary>
        <Field label="Allowed IP addresses" hint="Addresses or CIDR ranges, separated by spaces or commas. Empty = any address." error={fieldError('allowedIps')}>
          <textarea name="allowedIps" rows={2} value={allowedIps} onChange={(e) => setAllowedIps(e.target.value)} />
        </Field>
        <div className="row">
          <Field label="Rate limit (requests)" error={fieldError('rateLimit')}>
            <input type="number" min={1} inputMode="numeric" value={rateLimit} onChange={(e) => setRateLimit(e.target.value)} />
          </Field>
          <Field label="per (seconds)">
            <input type="number" min={1} max={86400} inputMode="numeric" value={rateWindow} onChange={(e) => setRateWindow(e.target.value)} />
          </Field>
          <Field label="Quota (uses left)" hint="Empty = unlimited." error={fieldError('remaining')}>
            <input type="number" min={0} inputMode="numeric" value={quota} onChange={(e) => setQuota(e.target.value)} />
          </Field>
        </div>
      </details>

      <DialogFooter error={generalError}>
        <button type="submit" className="button primary" disabled={create.isPending}>
          {create.isPending ? 'Creating…' : 'Create token'}
        </button>
      </DialogFooter>
    </form>
  );
}

interface ScopePickerProps {
  catalog: Catalog;
  grantable: Catalog['scopes'];
  presets: Catalog['presets'];
  activePreset: string;
  selected: Set<string>;
  error?: string;
  onPreset(name: string, scopes: string[]): void;
  onToggle(scope: string, on: boolean): void;
}

function ScopePicker({ catalog, grantable, presets, activePreset, selected, error, onPreset, onToggle }: ScopePickerProps) {
  const hidden = catalog.scopes.length - grantable.length;
  return (
    <fieldset className="field">
      <legend>Scopes</legend>
      <div className="choices" role="radiogroup" aria-label="Scope preset">
        {presets.map((p) => (
          <label key={p.name} className="choice" title={p.description ?? undefined}>
            <input type="radio" name="preset" value={p.name} checked={activePreset === p.name} onChange={() => onPreset(p.name, p.scopes)} />
            {p.name}
          </label>
        ))}
        <label className="choice">
          <input type="radio" name="preset" value="custom" checked={activePreset === 'custom'} onChange={() => onPreset('custom', [...selected])} />
          Custom
        </label>
      </div>
      <ul className="scope-list" aria-label="Individual scopes">
        {grantable.map((scope) => (
          <li key={scope.name}>
            <label className="scope">
              <input type="checkbox" checked={selected.has(scope.name)} onChange={(e) => onToggle(scope.name, e.target.checked)} />
              <code>{scope.name}</code>
              <span className="muted">{scope.description}</span>
            </label>
          </li>
        ))}
      </ul>
      {hidden > 0 && <p className="muted">{hidden} more scopes need a higher role than yours.</p>}
      {error && <p className="field-error">{error}</p>}
    </fieldset>
  );
}
