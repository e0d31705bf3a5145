// Resources: the projects, repositories or groups tokens and members can be
// limited to. Everyone sees the ones they can reach; admins add and delete
// them (the server enforces that too: these controls are only hidden).
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

const PAGE_SIZE = 25;

export function ResourcesPage() {
  const { organization } = useSession();
  const pages = useCursorPages();
  const resources = useQuery({
    queryKey: ['resources', organization?.id, 'page', pages.cursor],
    queryFn: async () => unwrap(await api.GET('/api/v1/resources', { params: { query: { limit: PAGE_SIZE, ...(pages.cursor ? { cursor: pages.cursor } : {}) } } })),
    placeholderData: keepPreviousData,
    enabled: organization !== null,
  });
  if (!organization) return <p>You are not a member of any organization yet.</p>;
  const isAdmin = isRoleAtLeast(organization.role, 'admin');
  const items = resources.data?.items ?? [];

  return (
    <section aria-labelledby="resources-title">
      <h1 id="resources-title">Resources</h1>
      <p className="muted lead">
        Projects, repositories, networks or anything else your API scopes by. A token or a member can be limited to some of them; a token lists them in order of priority.
        {isAdmin ? '' : ' Admins add and delete them.'}
      </p>
      {isAdmin && <AddResourceForm organization={organization} onAdded={pages.reset} />}
      <ErrorAlert error={resources.error} />
      {resources.isLoading && <p role="status">Loading resources…</p>}
      {resources.isSuccess && items.length === 0 && pages.isFirst && (
        <div className="empty">
          <h2>No resources yet</h2>
          <p>Without resources, tokens reach everything their owner can. {isAdmin ? 'Add one above to let tokens and members be limited to it.' : 'An admin can add some.'}</p>
        </div>
      )}
      {items.length > 0 && (
        <DataTable caption="Resources" columns={isAdmin ? ['Name', 'Type', 'ID', 'Created', 'hidden:Actions'] : ['Name', 'Type', 'ID', 'Created']}>
          {items.map((resource) => (
            <tr key={resource.id}>
              <th scope="row">{resource.name}</th>
              <td>{resource.type}</td>
              <td>
                <code className="hint">{resource.id}</code>
              </td>
              <td>
                <RelativeTime at={resource.createdAt} />
              </td>
              {isAdmin && (
                <td>
                  <DeleteResource resource={resource} />
                </td>
              )}
            </tr>
          ))}
        </DataTable>
      )}
      <CursorPager pages={pages} nextCursor={resources.data?.nextCursor} />
    </section>
  );
}

function AddResourceForm({ organization, onAdded }: { organization: Organization; onAdded(): void }) {
  const queryClient = useQueryClient();
  const [type, setType] = useState('project');
  const [name, setName] = useState('');
  const create = useMutation({
    mutationFn: async () => unwrap(await api.POST('/api/v1/resources', { body: { type: type.trim(), name: name.trim() } })),
    onSuccess: async () => {
      setName('');
      // Newest first: the new one is on the first page.
      onAdded();
      await queryClient.invalidateQueries({ queryKey: ['resources', organization.id] });
    },
  });
  const problem = create.error instanceof ApiProblem ? create.error : null;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  return (
    <form onSubmit={submit} noValidate className="panel" aria-labelledby="add-resource-title">
      <h2 id="add-resource-title">Add a resource</h2>
      <div className="row">
        <Field label="Type" hint="Lower case, e.g. project or repository." error={problem?.fieldMessage('type')}>
          <input type="text" name="type" autoComplete="off" value={type} onChange={(e) => setType(e.target.value)} />
        </Field>
        <Field label="Resource name" hint="Unique within its type." error={problem?.fieldMessage('name')}>
          <input type="text" name="name" autoComplete="off" value={name} onChange={(e) => setName(e.target.value)} />
        </Field>
        <div className="field">
          <span aria-hidden="true">&nbsp;</span>
          <button type="submit" className="button primary" disabled={create.isPending}>
            Add resource
          </button>
        </div>
      </div>
      <ErrorAlert error={problem && problem.errors.length > 0 ? null : create.error} />
      <p role="status" className="muted">
        {create.isSuccess && create.data ? `Added ${create.data.type} “${create.data.name}”.` : ''}
      </p>
    </form>
  );
}

function DeleteResource({ resource }: { resource: Resource }) {
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const remove = useMutation({
    mutationFn: async () => unwrap(await api.DELETE('/api/v1/resources/{id}', { params: { path: { id: resource.id } } })),
    onSuccess: () => setOpen(false),
    // Tokens list their resources: theirs changed too.
    onSettled: () => Promise.all(['resources', 'tokens', 'client-tokens', 'members'].map((key) => queryClient.invalidateQueries({ queryKey: [key] }))),
  });
  return (
    <AlertDialog.Root
      open={open}
      onOpenChange={(next) => {
        setOpen(next);
        if (!next) remove.reset();
      }}
    >
      <AlertDialog.Trigger asChild>
        <button type="button" className="button small" aria-label={`Delete ${resource.name}`}>
          Delete
        </button>
      </AlertDialog.Trigger>
      <AlertDialog.Portal>
        <AlertDialog.Overlay className="overlay" />
        <AlertDialog.Content className="dialog">
          <AlertDialog.Title>
            Delete {resource.type} “{resource.name}”?
          </AlertDialog.Title>
          <AlertDialog.Description asChild>
            <div>
              <p>This cannot be undone, and it takes effect at once:</p>
              <ul>
                <li>Tokens that list it lose that grant; their other resources keep their order. A token limited to this resource alone then reaches none.</li>
                <li>Members limited to it lose access to it.</li>
              </ul>
            </div>
          </AlertDialog.Description>
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
