// Organization settings for admins: the token policy every new token must
// meet, and the resources tokens and members can be limited to.
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { AlertDialog } from 'radix-ui';
import { useState, type FormEvent } from 'react';
import { ApiProblem, api, unwrap, type Organization, type Resource } from '../api/client.ts';
import { isRoleAtLeast } from '../api/roles.ts';
import { CursorPager, useCursorPages } from '../components/cursor-pager.tsx';
import { DataTable } from '../components/data-table.tsx';
import { DialogFooter, ErrorAlert } from '../components/dialog-footer.tsx';
import { Field } from '../components/field.tsx';
import { RelativeTime } from '../components/relative-time.tsx';
import { useSession } from '../session.tsx';

export function OrganizationPage() {
  const { organization } = useSession();
  if (!organization) return null;
  if (!isRoleAtLeast(organization.role, 'admin')) return <p>Only admins and owners change organization settings.</p>;
  return (
    <>
      <h1>{organization.name}</h1>
      <TokenPolicyForm key={organization.id} organization={organization} />
      <ResourcesSection organization={organization} />
    </>
  );
}

/** A number of days for an input, where null (off, forever) is the empty field. */
function daysText(days: number | null | undefined): string {
  return days === null || days === undefined ? '' : String(days);
}

function daysOrOff(text: string): number | null {
  return text.trim() === '' ? null : Number(text);
}

function TokenPolicyForm({ organization }: { organization: Organization }) {
  const queryClient = useQueryClient();
  const policy = organization.tokenPolicy;
  const [maxLifetimeDays, setMaxLifetimeDays] = useState(String(policy.maxLifetimeDays));
  const [allowNoExpiry, setAllowNoExpiry] = useState(policy.allowNoExpiry);
  const [requireIpAllowlist, setRequireIpAllowlist] = useState(policy.requireIpAllowlist);
  const [revokeUnusedAfterDays, setRevokeUnusedAfterDays] = useState(daysText(policy.revokeUnusedAfterDays));
  const [retentionDays, setRetentionDays] = useState(daysText(policy.retentionDays));
  const save = useMutation({
    mutationFn: async () =>
      unwrap(
        await api.PATCH('/api/v1/organizations/current', {
          body: {
            tokenPolicy: {
              maxLifetimeDays: Number(maxLifetimeDays),
              allowNoExpiry,
              requireIpAllowlist,
              revokeUnusedAfterDays: daysOrOff(revokeUnusedAfterDays),
              retentionDays: daysOrOff(retentionDays),
            },
          },
        }),
      ),
    // The policy travels with the session's organizations.
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['session'] }),
  });
  const problem = save.error instanceof ApiProblem ? save.error : null;
  // The server names each policy field (tokenPolicy/retentionDays…): show each error next to its own input.
  const policyError = (name: string) => problem?.errors.find((error) => error.field.replace(/^\//, '') === `tokenPolicy/${name}`)?.message;
  const lifetimeError = policyError('maxLifetimeDays') ?? (policyError('revokeUnusedAfterDays') || policyError('retentionDays') ? undefined : problem?.fieldMessage('tokenPolicy'));
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate();
  };
  return (
    <section aria-labelledby="policy-title" className="panel">
      <h2 id="policy-title">Token policy</h2>
      <form onSubmit={submit} noValidate>
        <Field label="Longest lifetime (days)" hint="New and rotated tokens expire within this." error={lifetimeError}>
          <input type="number" min={1} max={3650} inputMode="numeric" value={maxLifetimeDays} onChange={(e) => setMaxLifetimeDays(e.target.value)} />
        </Field>
        <label className="choice">
          <input type="checkbox" checked={allowNoExpiry} onChange={(e) => setAllowNoExpiry(e.target.checked)} />
          Allow tokens that never expire
        </label>
        <label className="choice">
          <input type="checkbox" checked={requireIpAllowlist} onChange={(e) => setRequireIpAllowlist(e.target.checked)} />
          Require an IP allowlist on every token
        </label>
        <Field label="Revoke tokens unused for (days)" hint="Empty: never. Tokens not used for this long are revoked by Keyward (audited as system)." error={policyError('revokeUnusedAfterDays')}>
          <input type="number" min={1} max={3650} inputMode="numeric" value={revokeUnusedAfterDays} onChange={(e) => setRevokeUnusedAfterDays(e.target.value)} />
        </Field>
        <Field label="Keep revoked and expired tokens for (days)" hint="Empty: forever. After this, they and older audit events and usage are purged (at least 30)." error={policyError('retentionDays')}>
          <input type="number" min={30} max={3650} inputMode="numeric" value={retentionDays} onChange={(e) => setRetentionDays(e.target.value)} />
        </Field>
        <ErrorAlert error={problem && problem.errors.length > 0 ? null : save.error} />
        <div className="actions">
          <span role="status" className="muted">
            {save.isSuccess && !save.isPending ? 'Saved.' : ''}
          </span>
          <button type="submit" className="button primary" disabled={save.isPending}>
            Save policy
          </button>
        </div>
      </form>
    </section>
  );
}

function ResourcesSection({ organization }: { organization: Organization }) {
  const queryClient = useQueryClient();
  const pages = useCursorPages();
  const [type, setType] = useState('project');
  const [name, setName] = useState('');
  const resources = useQuery({
    queryKey: ['resources', organization.id, 'page', pages.cursor],
    queryFn: async () => unwrap(await api.GET('/api/v1/resources', { params: { query: { limit: 50, ...(pages.cursor ? { cursor: pages.cursor } : {}) } } })),
    placeholderData: keepPreviousData,
  });
  const create = useMutation({
    mutationFn: async () => unwrap(await api.POST('/api/v1/resources', { body: { type, name } })),
    onSuccess: async () => {
      setName('');
      await queryClient.invalidateQueries({ queryKey: ['resources'] });
    },
  });
  const problem = create.error instanceof ApiProblem ? create.error : null;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  return (
    <section aria-labelledby="resources-title" className="panel">
      <h2 id="resources-title">Resources</h2>
      <p className="muted">Projects, repositories or anything else your API scopes by: tokens and members can be limited to some of them.</p>
      <form onSubmit={submit} noValidate className="row">
        <Field label="Type" hint="Lower case, e.g. project." error={problem?.fieldMessage('type')}>
          <input type="text" value={type} onChange={(e) => setType(e.target.value)} />
        </Field>
        <Field label="Resource name" error={problem?.fieldMessage('name')}>
          <input type="text" value={name} onChange={(e) => setName(e.target.value)} />
        </Field>
        <div className="field">
          <span aria-hidden="true">&nbsp;</span>
          <button type="submit" className="button primary" disabled={create.isPending}>
            Add resource
          </button>
        </div>
      </form>
      <ErrorAlert error={problem && problem.errors.length > 0 ? null : (create.error ?? resources.error)} />
      {resources.data && resources.data.items.length > 0 && (
        <DataTable caption="Resources" columns={['Name', 'Type', 'Created', 'hidden:Actions']}>
          {resources.data.items.map((resource) => (
            <tr key={resource.id}>
              <th scope="row">{resource.name}</th>
              <td>{resource.type}</td>
              <td>
                <RelativeTime at={resource.createdAt} />
              </td>
              <td>
                <DeleteResource resource={resource} />
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      <CursorPager pages={pages} nextCursor={resources.data?.nextCursor} />
    </section>
  );
}

function DeleteResource({ resource }: { resource: Resource }) {
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const remove = useMutation({
    mutationFn: async () => unwrap(await api.DELETE('/api/v1/resources/{id}', { params: { path: { id: resource.id } } })),
    onSuccess: () => setOpen(false),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ['resources'] }),
  });
  return (
    <AlertDialog.Root open={open} onOpenChange={setOpen}>
      <AlertDialog.Trigger asChild>
        <button type="button" className="button small" aria-label={`Delete ${resource.name}`}>
          Delete
        </button>
      </AlertDialog.Trigger>
      <AlertDialog.Portal>
        <AlertDialog.Overlay className="overlay" />
        <AlertDialog.Content className="dialog">
          <AlertDialog.Title>Delete {resource.name}?</AlertDialog.Title>
          <AlertDialog.Description>Tokens and members limited to it lose that grant.</AlertDialog.Description>
          <DialogFooter error={remove.error} kind="alert">
            <button type="button" className="button danger" disabled={remove.isPending} onClick={() => remove.mutate()}>
              Delete resource
            </button>
          </DialogFooter>
        </AlertDialog.Content>
      </AlertDialog.Portal>
    </AlertDialog.Root>
  );
}
