// The create dialog: name, expiry, scopes (a preset or individual ones, only
// those the person's role may grant), ranked resources and optional limits.
// The server has the last word: its `errors[]` are shown next to their fields.
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { Dialog } from 'radix-ui';
import { useState, type FormEvent } from 'react';
import { api, unwrap, type Catalog, type CreateTokenInput, type Organization, type ResourceRef } from '../api/client.ts';
import { DialogFooter, ErrorAlert } from './dialog-footer.tsx';
import { Field } from './field.tsx';
import { ResourcePicker } from './resource-picker.tsx';
import { NO_RESTRICTIONS, NameField, RestrictionFields, ScopePicker, formProblem, parseRestrictions, useScopeSelection, useTokenChoices } from './token-fields.tsx';

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
  const { catalog, resources, grantable, presets } = useTokenChoices(organization);
  const policy = organization.tokenPolicy;
  const presetsAllowed = EXPIRY_PRESETS.filter((days) => days <= policy.maxLifetimeDays);

  const [name, setName] = useState('');
  const [expiry, setExpiry] = useState<string>(String(presetsAllowed.includes(30) ? 30 : (presetsAllowed.at(-1) ?? 'custom')));
  const [customDate, setCustomDate] = useState('');
  const [chosen, setChosen] = useState<ResourceRef[]>([]);
  const [restrictions, setRestrictions] = useState(NO_RESTRICTIONS);

  // Until the person picks, the catalog's default preset (if they may grant it) is chosen.
  const defaultPreset = presets.find((p) => p.name === catalog.data?.defaultPreset) ?? presets[0];
  const scopes = useScopeSelection(presets, defaultPreset?.scopes ?? []);

  const create = useMutation({
    mutationFn: async () => {
      const body: CreateTokenInput = { name, scopes: [...scopes.selected].sort(), resources: chosen.map((r) => r.id), expiresInDays: expiresInDays() };
      const { allowedIps, rateLimit, remaining } = parseRestrictions(restrictions);
      if (allowedIps.length > 0) body.allowedIps = allowedIps;
      if (rateLimit) body.rateLimit = rateLimit;
      if (remaining !== null) body.remaining = remaining;
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

  const { fieldError, generalError } = formProblem(create.error);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };

  if (catalog.isLoading) return <p role="status">Loading the scope catalog…</p>;
  if (catalog.error) return <ErrorAlert error={catalog.error} />;

  return (
    <form onSubmit={submit} noValidate className="form">
      <NameField value={name} error={fieldError('name')} onChange={setName} autoFocus />

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

      <ScopePicker catalog={catalog.data as Catalog} grantable={grantable} presets={presets} error={fieldError('scopes')} {...scopes} />

      <ResourcePicker resources={resources.data ?? []} value={chosen} onChange={setChosen} error={fieldError('resources')} />

      <RestrictionFields value={restrictions} open={policy.requireIpAllowlist} fieldError={fieldError} onChange={setRestrictions} />

      <DialogFooter error={generalError}>
        <button type="submit" className="button primary" disabled={create.isPending}>
          {create.isPending ? 'Creating…' : 'Create token'}
        </button>
      </DialogFooter>
    </form>
  );
}
