// API clients (services that hold their own tokens): the list with create and
// delete, and each client's page with its service tokens and usage chart.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { AlertDialog, Dialog } from 'radix-ui';
import { useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { ApiProblem, api, unwrap, type Client } from '../api/client.ts';
import { isRoleAtLeast } from '../api/roles.ts';
import { CreateTokenDialog } from '../components/create-token-dialog.tsx';
import { DataTable } from '../components/data-table.tsx';
import { DialogFooter, ErrorAlert } from '../components/dialog-footer.tsx';
import { Field } from '../components/field.tsx';
import { RelativeTime } from '../components/relative-time.tsx';
import { useReturnFocus } from '../components/return-focus.ts';
import { SecretDialog, type ShownSecret } from '../components/secret-dialog.tsx';
import { UsageChart } from '../components/usage-chart.tsx';
import { useSession } from '../session.tsx';
import { TokenTable } from './tokens-page.tsx';

export function ClientsPage() {
  const { organization } = useSession();
  const [creating, setCreating] = useState(false);
  const clients = useQuery({
    queryKey: ['clients', organization?.id],
    queryFn: async () => unwrap(await api.GET('/api/v1/clients', { params: { query: { limit: 100 } } })),
    enabled: organization !== null,
  });
  if (!organization) return null;
  if (!isRoleAtLeast(organization.role, 'admin')) return <p>Only admins and owners manage API clients.</p>;
  return (
    <section aria-labelledby="clients-title">
      <div className="page-head">
        <h1 id="clients-title">API clients</h1>
        <Dialog.Root open={creating} onOpenChange={setCreating}>
          <Dialog.Trigger asChild>
            <button type="button" className="button primary">
              New client
            </button>
          </Dialog.Trigger>
          <CreateClientDialog onDone={() => setCreating(false)} />
        </Dialog.Root>
      </div>
      <p className="muted lead">A client is a service, not a person: its service tokens keep working when people come and go, and share the client’s rate limit.</p>
      <ErrorAlert error={clients.error} />
      {clients.data && clients.data.items.length === 0 && <p className="empty">No API clients yet.</p>}
      {clients.data && clients.data.items.length > 0 && (
        <DataTable caption="API clients" columns={['Name', 'Description', 'Rate limit', 'Created']}>
          {clients.data.items.map((client) => (
            <tr key={client.id}>
              <th scope="row">
                <Link to={`/clients/${client.id}`}>{client.name}</Link>
              </th>
              <td>{client.description ?? <span className="muted">—</span>}</td>
              <td>{client.rateLimit ? `${client.rateLimit.limit} per ${client.rateLimit.windowSeconds} s` : <span className="muted">None</span>}</td>
              <td>
                <RelativeTime at={client.createdAt} />
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}

function CreateClientDialog({ onDone }: { onDone(): void }) {
  const queryClient = useQueryClient();
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const create = useMutation({
    mutationFn: async () => unwrap(await api.POST('/api/v1/clients', { body: { name, ...(description ? { description } : {}) } })),
    onSuccess: async () => {
      setName('');
      setDescription('');
      onDone();
      await queryClient.invalidateQueries({ queryKey: ['clients'] });
    },
  });
  const problem = create.error instanceof ApiProblem ? create.error : null;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  return (
    <Dialog.Portal>
      <Dialog.Overlay className="overlay" />
      <Dialog.Content className="dialog" aria-describedby={undefined}>
        <Dialog.Title>New API client</Dialog.Title>
        <form onSubmit={submit} noValidate>
          <Field label="Client name" error={problem?.fieldMessage('name')}>
            <input type="text" value={name} onChange={(e) => setName(e.target.value)} />
          </Field>
          <Field label="Description" error={problem?.fieldMessage('description')}>
            <input type="text" value={description} onChange={(e) => setDescription(e.target.value)} />
          </Field>
          <DialogFooter error={problem && problem.errors.length > 0 ? null : create.error}>
            <button type="submit" className="button primary" disabled={create.isPending}>
              Create client
            </button>
          </DialogFooter>
        </form>
      </Dialog.Content>
    </Dialog.Portal>
  );
}

export function ClientPage() {
  const { id = '' } = useParams();
  const { organization } = useSession();
  const [issuing, setIssuing] = useState(false);
  const [shown, setShown] = useState<ShownSecret | null>(null);
  const issueFocus = useReturnFocus();
  const client = useQuery({
    queryKey: ['clients', organization?.id, id],
    queryFn: async () => unwrap(await api.GET('/api/v1/clients/{id}', { params: { path: { id } } })),
    enabled: organization !== null,
  });
  const tokens = useQuery({
    queryKey: ['client-tokens', organization?.id, id],
    queryFn: async () => unwrap(await api.GET('/api/v1/clients/{id}/tokens', { params: { path: { id }, query: { limit: 100 } } })),
    enabled: organization !== null,
  });
  if (!organization) return null;
  if (client.error) return <ErrorAlert error={client.error} />;
  if (!client.data) return <p role="status">Loading…</p>;
  const showSecret = (issued: { name: string; secret: string; returnTo?: HTMLElement | null }) =>
    setShown({ title: 'Your new service token', name: issued.name, secret: issued.secret, returnTo: issued.returnTo ?? issueFocus.element });

  return (
    <section aria-labelledby="client-title">
      <p>
        <Link to="/clients">← API clients</Link>
      </p>
      <div className="page-head">
        <h1 id="client-title">{client.data.name}</h1>
        <DeleteClient client={client.data} />
      </div>
      {client.data.description && <p className="muted lead">{client.data.description}</p>}
      <h2>Usage</h2>
      <UsageChart organizationId={organization.id} clientId={id} />
      <div className="page-head">
        <h2>Service tokens</h2>
        <button
          type="button"
          className="button primary"
          onClick={() => {
            issueFocus.remember();
            setIssuing(true);
          }}
        >
          Issue token
        </button>
      </div>
      <ErrorAlert error={tokens.error} />
      {tokens.data && tokens.data.items.length === 0 && <p className="empty">This client has no tokens yet.</p>}
      {tokens.data && tokens.data.items.length > 0 && <TokenTable items={tokens.data.items} onIssued={showSecret} />}
      <CreateTokenDialog open={issuing} organization={organization} clientId={id} onOpenChange={setIssuing} onIssued={showSecret} onCloseAutoFocus={issueFocus.onCloseAutoFocus} />
      <SecretDialog shown={shown} onClose={() => setShown(null)} />
    </section>
  );
}

function DeleteClient({ client }: { client: Client }) {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const remove = useMutation({
    mutationFn: async () => unwrap(await api.DELETE('/api/v1/clients/{id}', { params: { path: { id: client.id } } })),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: ['clients'] });
      navigate('/clients');
    },
  });
  return (
    <AlertDialog.Root>
      <AlertDialog.Trigger asChild>
        <button type="button" className="button">
          Delete client
        </button>
      </AlertDialog.Trigger>
      <AlertDialog.Portal>
        <AlertDialog.Overlay className="overlay" />
        <AlertDialog.Content className="dialog">
          <AlertDialog.Title>Delete {client.name}?</AlertDialog.Title>
          <AlertDialog.Description>Its service tokens are revoked at once.</AlertDialog.Description>
          <DialogFooter error={remove.error} kind="alert">
            <button type="button" className="button danger" disabled={remove.isPending} onClick={() => remove.mutate()}>
              Delete client
            </button>
          </DialogFooter>
        </AlertDialog.Content>
      </AlertDialog.Portal>
    </AlertDialog.Root>
  );
}
