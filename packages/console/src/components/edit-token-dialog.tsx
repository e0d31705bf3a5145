// The edit dialog: the create dialog's fields, filled with the token's
// settings. Only what the person changed is sent, so an untouched field (a
// quota counting down meanwhile, say) is never written back over the server's.
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { Dialog } from 'radix-ui';
import { useState, type FormEvent } from 'react';
import { api, unwrap, type Catalog, type Organization, type ResourceRef, type Token, type UpdateTokenInput } from '../api/client.ts';
import { DialogFooter, ErrorAlert } from './dialog-footer.tsx';
import { ResourcePicker } from './resource-picker.tsx';
import { NameField, RestrictionFields, ScopePicker, formProblem, parseRestrictions, restrictionInputsOf, useScopeSelection, useTokenChoices, type RestrictionInputs } from './token-fields.tsx';

interface Props {
  token: Token;
  organization: Organization;
  open: boolean;
  onOpenChange(open: boolean): void;
  onCloseAutoFocus(event: Event): void;
}

export function EditTokenDialog({ token, organization, open, onOpenChange, onCloseAutoFocus }: Props) {
  return (
    <Dialog.Root open={open} onOpenChange={onOpenChange}>
      <Dialog.Portal>
        <Dialog.Overlay className="overlay" />
        <Dialog.Content className="dialog wide" aria-describedby={undefined} onCloseAutoFocus={onCloseAutoFocus}>
          <Dialog.Title>Edit “{token.name}”</Dialog.Title>
          {open && <EditTokenForm token={token} organization={organization} onDone={() => onOpenChange(false)} />}
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The fields whose value differs from the token's. */
function changesOf(token: Token, form: { name: string; scopes: Set<string>; resources: ResourceRef[]; restrictions: RestrictionInputs }): UpdateTokenInput {
  const changes: UpdateTokenInput = {};
  if (form.name !== token.name) changes.name = form.name;
  const scopes = [...form.scopes].sort();
  if (!same(scopes, [...token.scopes].sort())) changes.scopes = scopes;
  const resources = form.resources.map((r) => r.id);
  if (!same(resources, token.resources.map((r) => r.id))) changes.resources = resources;
  const { allowedIps, rateLimit, remaining } = parseRestrictions(form.restrictions);
  if (!same(allowedIps, token.allowedIps)) changes.allowedIps = allowedIps;
  if (!same(rateLimit, token.rateLimit)) changes.rateLimit = rateLimit;
  if (remaining !== token.remaining) changes.remaining = remaining;
  return changes;
}

function EditTokenForm({ token, organization, onDone }: { token: Token; organization: Organization; onDone(): void }) {
  const queryClient = useQueryClient();
  const { catalog, resources, grantable, presets } = useTokenChoices(organization);
  const [name, setName] = useState(token.name);
  const scopes = useScopeSelection(presets, token.scopes);
  const [chosen, setChosen] = useState<ResourceRef[]>(token.resources);
  const [restrictions, setRestrictions] = useState(() => restrictionInputsOf(token));
  const hasRestrictions = token.allowedIps.length > 0 || token.rateLimit !== null || token.remaining !== null;

  const save = useMutation({
    mutationFn: async (body: UpdateTokenInput) => unwrap(await api.PATCH('/api/v1/tokens/{id}', { params: { path: { id: token.id } }, body })),
    onSuccess: async () => {
      onDone();
      await Promise.all(['tokens', 'client-tokens'].map((key) => queryClient.invalidateQueries({ queryKey: [key] })));
    },
  });
  const { fieldError, generalError } = formProblem(save.error);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const changes = changesOf(token, { name, scopes: scopes.selected, resources: chosen, restrictions });
    if (Object.keys(changes).length === 0) onDone();
    else save.mutate(changes);
  };

  if (catalog.isLoading) return <p role="status">Loading the scope catalog…</p>;
  if (catalog.error) return <ErrorAlert error={catalog.error} />;

  return (
    <form onSubmit={submit} noValidate className="form">
      <NameField value={name} error={fieldError('name')} onChange={setName} autoFocus />
      <ScopePicker catalog={catalog.data as Catalog} grantable={grantable} presets={presets} error={fieldError('scopes')} {...scopes} />
      <ResourcePicker resources={resources.data ?? []} value={chosen} onChange={setChosen} error={fieldError('resources')} />
      <RestrictionFields value={restrictions} open={hasRestrictions} fieldError={fieldError} onChange={setRestrictions} />
      <p className="muted">The expiry and the secret stay as they are: rotate the token for a new secret.</p>
      <DialogFooter error={generalError}>
        <button type="submit" className="button primary" disabled={save.isPending}>
          {save.isPending ? 'Saving…' : 'Save changes'}
        </button>
      </DialogFooter>
    </form>
  );
}
