// The fields the create and edit dialogs share: the name, the scope picker
// (presets and individual scopes, only those the person's role may grant),
// the optional restrictions, and the server's `errors[]` put next to them.
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { ApiProblem, api, unwrap, type Catalog, type Organization, type Token } from '../api/client.ts';
import { isRoleAtLeast } from '../api/roles.ts';
import { Field } from './field.tsx';

/** The fields a token form shows; a problem about any other field is shown as the form's general error. */
const FORM_FIELDS = new Set(['name', 'scopes', 'resources', 'expiresInDays', 'allowedIps', 'rateLimit', 'remaining']);

/** The scope catalog and the organization's resources, with what this person may grant. */
export function useTokenChoices(organization: Organization) {
  const catalog = useQuery({ queryKey: ['catalog', organization.id], queryFn: async () => unwrap(await api.GET('/api/v1/scopes')) });
  const resources = useQuery({
    queryKey: ['resources', organization.id],
    queryFn: async () => unwrap(await api.GET('/api/v1/resources', { params: { query: { limit: 100 } } })).items,
  });
  const grantable = (catalog.data?.scopes ?? []).filter((scope) => isRoleAtLeast(organization.role, scope.minRole));
  const grantableNames = new Set(grantable.map((scope) => scope.name));
  const presets = (catalog.data?.presets ?? []).filter((p) => p.scopes.every((s) => grantableNames.has(s)));
  return { catalog, resources, grantable, presets };
}

/** The preset whose scopes are exactly these, or 'custom'. */
function presetMatching(presets: Catalog['presets'], selected: Set<string>): string {
  const match = presets.find((p) => p.scopes.length === selected.size && p.scopes.every((s) => selected.has(s)));
  return match?.name ?? 'custom';
}

/**
 * The chosen scopes and the preset they belong to: `initial` until the person
 * picks (it may arrive later, with the catalog); a preset picked stays picked,
 * otherwise it is whichever one the scopes match.
 */
export function useScopeSelection(presets: Catalog['presets'], initial: string[]) {
  const [scopes, setScopes] = useState<Set<string> | null>(null);
  const [preset, setPreset] = useState<string | null>(null);
  const selected = scopes ?? new Set(initial);
  return {
    selected,
    activePreset: preset ?? presetMatching(presets, selected),
    onPreset(name: string, presetScopes: string[]) {
      setPreset(name);
      setScopes(new Set(presetScopes));
    },
    onToggle(scope: string, on: boolean) {
      const next = new Set(selected);
      if (on) next.add(scope);
      else next.delete(scope);
      setPreset(null);
      setScopes(next);
    },
  };
}

/** The server's message for each field, and what is left for the form as a whole. */
export function formProblem(error: Error | null) {
  const problem = error instanceof ApiProblem ? error : null;
  const fieldError = (field: string) => problem?.fieldMessage(field);
  const isAboutAField = problem !== null && problem.errors.some((e) => FORM_FIELDS.has(e.field.replace(/^\//, '').split('/')[0] ?? ''));
  let generalError: string | null = null;
  if (error && !isAboutAField) {
    // A refusal says so in words, not only with the server's detail.
    generalError = problem?.status === 403 ? `Not allowed: ${error.message}` : error.message;
  }
  return { fieldError, generalError };
}

/**
 * `autoFocus` for a form that opens a dialog: the form may render after the
 * dialog opened (once the scope catalog has loaded), when the dialog's own
 * initial focus found nothing to focus, so the field takes focus itself.
 */
export function NameField({ value, error, onChange, autoFocus = false }: { value: string; error: string | undefined; onChange(value: string): void; autoFocus?: boolean }) {
  return (
    <Field label="Name" hint="Letters, digits, spaces, dots, dashes and underscores; say where it is used, e.g. “CI deploy”." error={error}>
      <input type="text" name="name" autoComplete="off" required maxLength={64} value={value} autoFocus={autoFocus} onChange={(e) => onChange(e.target.value)} />
    </Field>
  );
}

interface ScopePickerProps {
  catalog: Catalog;
  grantable: Catalog['scopes'];
  presets: Catalog['presets'];
  activePreset: string;
  selected: Set<string>;
  error?: string | undefined;
  onPreset(name: string, scopes: string[]): void;
  onToggle(scope: string, on: boolean): void;
}

export function ScopePicker({ catalog, grantable, presets, activePreset, selected, error, onPreset, onToggle }: ScopePickerProps) {
  const hidden = catalog.scopes.length - grantable.length;
  // A token may already hold scopes this list does not offer (a wildcard, or
  // one above the editor's role): they stay listed so they can be removed.
  const offered = new Set(grantable.map((scope) => scope.name));
  const held = [...selected].filter((name) => !offered.has(name)).map((name) => ({ name, description: catalog.scopes.find((s) => s.name === name)?.description ?? 'Already on this token.' }));
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
        {[...grantable, ...held].map((scope) => (
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

/** The restriction inputs as typed: empty means none. */
export interface RestrictionInputs {
  allowedIps: string;
  rateLimit: string;
  rateWindow: string;
  quota: string;
}

export const NO_RESTRICTIONS: RestrictionInputs = { allowedIps: '', rateLimit: '', rateWindow: '60', quota: '' };

export function restrictionInputsOf(token: Token): RestrictionInputs {
  return {
    allowedIps: token.allowedIps.join('\n'),
    rateLimit: token.rateLimit ? String(token.rateLimit.limit) : '',
    rateWindow: token.rateLimit ? String(token.rateLimit.windowSeconds) : '60',
    quota: token.remaining === null ? '' : String(token.remaining),
  };
}

/** The restrictions as the API takes them. */
export function parseRestrictions(inputs: RestrictionInputs): Pick<Token, 'allowedIps' | 'rateLimit' | 'remaining'> {
  return {
    allowedIps: inputs.allowedIps.split(/[\s,]+/).filter(Boolean),
    rateLimit: inputs.rateLimit.trim() === '' ? null : { limit: Number(inputs.rateLimit), windowSeconds: Number(inputs.rateWindow) },
    remaining: inputs.quota.trim() === '' ? null : Number(inputs.quota),
  };
}

interface RestrictionFieldsProps {
  value: RestrictionInputs;
  open: boolean;
  fieldError(field: string): string | undefined;
  onChange(value: RestrictionInputs): void;
}

export function RestrictionFields({ value, open, fieldError, onChange }: RestrictionFieldsProps) {
  const set = (key: keyof RestrictionInputs) => (event: { target: { value: string } }) => onChange({ ...value, [key]: event.target.value });
  return (
    <details className="field" open={open || undefined}>
      <summary>Optional restrictions: IP allowlist, rate limit, quota</summary>
      <Field label="Allowed IP addresses" hint="Addresses or CIDR ranges, separated by spaces or commas. Empty = any address." error={fieldError('allowedIps')}>
        <textarea name="allowedIps" rows={2} value={value.allowedIps} onChange={set('allowedIps')} />
      </Field>
      <div className="row">
        <Field label="Rate limit (requests)" error={fieldError('rateLimit')}>
          <input type="number" min={1} inputMode="numeric" value={value.rateLimit} onChange={set('rateLimit')} />
        </Field>
        <Field label="per (seconds)">
          <input type="number" min={1} max={86400} inputMode="numeric" value={value.rateWindow} onChange={set('rateWindow')} />
        </Field>
        <Field label="Quota (uses left)" hint="Empty = unlimited." error={fieldError('remaining')}>
          <input type="number" min={0} inputMode="numeric" value={value.quota} onChange={set('quota')} />
        </Field>
      </div>
    </details>
  );
}
