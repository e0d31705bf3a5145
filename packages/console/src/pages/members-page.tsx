// Members: invite with a role and, if you like, some resources (the one-time
// link is shown once), change a member's role, remove a member or withdraw an
// invitation.
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { AlertDialog, Dialog } from 'radix-ui';
import { useState, type FormEvent } from 'react';
import { ApiProblem, api, unwrap, type Member, type Resource, type Role } from '../api/client.ts';
import { isRoleAtLeast } from '../api/roles.ts';
import { CursorPager, useCursorPages } from '../components/cursor-pager.tsx';
import { DialogFooter, ErrorAlert } from '../components/dialog-footer.tsx';
import { Field } from '../components/field.tsx';
import { DataTable } from '../components/data-table.tsx';
import { RelativeTime } from '../components/relative-time.tsx';
import { useReturnFocus } from '../components/return-focus.ts';
import { SecretDialog, type ShownSecret } from '../components/secret-dialog.tsx';
import { useSession } from '../session.tsx';

const ROLES: Role[] = ['viewer', 'member', 'admin', 'owner'];

function memberId(member: Member): string {
  return member.userId ?? member.invitationId ?? '';
}

export function MembersPage() {
  const { organization, session } = useSession();
  const queryClient = useQueryClient();
  const pages = useCursorPages();
  const [inviting, setInviting] = useState(false);
  const [shown, setShown] = useState<ShownSecret | null>(null);
  const inviteFocus = useReturnFocus();
  const members = useQuery({
    queryKey: ['members', organization?.id, pages.cursor],
    queryFn: async () => unwrap(await api.GET('/api/v1/members', { params: { query: { limit: 50, ...(pages.cursor ? { cursor: pages.cursor } : {}) } } })),
    placeholderData: keepPreviousData,
    enabled: organization !== null,
  });
  const resources = useOrganizationResources(organization?.id);
  const changeRole = useMutation({
    mutationFn: async ({ userId, role }: { userId: string; role: Role }) => unwrap(await api.PATCH('/api/v1/members/{userId}', { params: { path: { userId } }, body: { role } })),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ['members'] }),
  });

  if (!organization) return null;
  if (!isRoleAtLeast(organization.role, 'admin')) return <p>Only admins and owners manage members.</p>;
  // Only an owner may make or unmake owners.
  const assignable = ROLES.filter((role) => role !== 'owner' || organization.role === 'owner');

  return (
    <section aria-labelledby="members-title">
      <div className="page-head">
        <h1 id="members-title">Members</h1>
        <button
          type="button"
          className="button primary"
          onClick={() => {
            inviteFocus.remember();
            setInviting(true);
          }}
        >
          Invite member
        </button>
      </div>
      <p className="muted lead">A member’s role caps every token they hold: viewer reads, member writes, admin manages the organization, owner also manages owners.</p>
      <ErrorAlert error={members.error ?? changeRole.error} />
      {members.data && (
        <DataTable caption="Members" columns={['Email', 'Status', 'Role', 'Resources', 'Since', 'hidden:Actions']}>
          {members.data.items.map((member) => (
            <tr key={memberId(member)}>
              <th scope="row">{member.email}</th>
              <td>
                <span className={`badge status-${member.status === 'active' ? 'active' : 'disabled'}`}>{member.status === 'active' ? 'Active' : 'Invited'}</span>
                {member.expiresAt && (
                  <span className="muted">
                    {' '}
                    until <RelativeTime at={member.expiresAt} />
                  </span>
                )}
              </td>
              <td>
                {member.userId && member.userId !== session?.user.id ? (
                  <select
                    aria-label={`Role of ${member.email}`}
                    value={member.role}
                    disabled={changeRole.isPending}
                    onChange={(e) => changeRole.mutate({ userId: member.userId as string, role: e.target.value as Role })}
                  >
                    {(assignable.includes(member.role) ? assignable : [member.role, ...assignable]).map((role) => (
                      <option key={role} value={role}>
                        {role}
                      </option>
                    ))}
                  </select>
                ) : (
                  <span className={`badge permission-${member.role}`}>{member.role}</span>
                )}
              </td>
              <td>
                <MemberResources ids={member.resources} names={resources.names} />
              </td>
              <td>
                <RelativeTime at={member.createdAt} />
              </td>
              <td>{member.userId !== session?.user.id && <RemoveMember member={member} />}</td>
            </tr>
          ))}
        </DataTable>
      )}
      <CursorPager pages={pages} nextCursor={members.data?.nextCursor} />
      <InviteDialog
        open={inviting}
        roles={assignable}
        resources={resources.items}
        onOpenChange={setInviting}
        onCloseAutoFocus={inviteFocus.onCloseAutoFocus}
        onInvited={(email, link) => setShown({ title: 'Invitation link', name: email, secret: link, kind: 'invitation link', returnTo: inviteFocus.element })}
      />
      <SecretDialog shown={shown} onClose={() => setShown(null)} />
    </section>
  );
}

/** The organization's resources (the first 100), and their names by id for the members table. */
function useOrganizationResources(organizationId: string | undefined) {
  const query = useQuery({
    queryKey: ['resources', organizationId, 'all'],
    queryFn: async () => unwrap(await api.GET('/api/v1/resources', { params: { query: { limit: 100 } } })).items,
    enabled: organizationId !== undefined,
  });
  const items = query.data ?? [];
  return { items, names: new Map(items.map((r) => [r.id, r.name])) };
}

function MemberResources({ ids, names }: { ids: string[] | null; names: Map<string, string> }) {
  if (ids === null) return <span className="muted">All</span>;
  if (ids.length === 0) return <span className="muted">None</span>;
  return (
    <ul className="chips" aria-label="Resources">
      {ids.map((id) => (
        <li key={id} className="chip">
          {names.get(id) ?? id}
        </li>
      ))}
    </ul>
  );
}

interface InviteDialogProps {
  open: boolean;
  roles: Role[];
  resources: Resource[];
  onOpenChange(open: boolean): void;
  onCloseAutoFocus(event: Event): void;
  onInvited(email: string, link: string): void;
}

function InviteDialog({ open, roles, resources, onOpenChange, onCloseAutoFocus, onInvited }: InviteDialogProps) {
  const queryClient = useQueryClient();
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('member');
  const [limitedTo, setLimitedTo] = useState<string[]>([]);
  const invite = useMutation({
    mutationFn: async () => {
      const body = { email, role, ...(limitedTo.length > 0 ? { resources: limitedTo } : {}) };
      const { inviteUrl, inviteToken: _secret, ...invited } = unwrap(await api.POST('/api/v1/members', { body }));
      onInvited(invited.email, inviteUrl);
      return invited;
    },
    onSuccess: async () => {
      setEmail('');
      setLimitedTo([]);
      onOpenChange(false);
      await queryClient.invalidateQueries({ queryKey: ['members'] });
    },
  });
  const problem = invite.error instanceof ApiProblem ? invite.error : null;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    invite.mutate();
  };
  return (
    <Dialog.Root open={open} onOpenChange={onOpenChange}>
      <Dialog.Portal>
        <Dialog.Overlay className="overlay" />
        <Dialog.Content className="dialog" aria-describedby={undefined} onCloseAutoFocus={onCloseAutoFocus}>
          <Dialog.Title>Invite a member</Dialog.Title>
          <form onSubmit={submit} noValidate>
            <Field label="Email" error={problem?.fieldMessage('email')}>
              <input type="email" name="email" autoComplete="off" required value={email} onChange={(e) => setEmail(e.target.value)} />
            </Field>
            <Field label="Role" error={problem?.fieldMessage('role')}>
              <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
                {roles.map((r) => (
                  <option key={r} value={r}>
                    {r}
                  </option>
                ))}
              </select>
            </Field>
            {resources.length > 0 && (
              <fieldset className="field">
                <legend>Resources</legend>
                <p className="muted">None ticked: every resource. Otherwise the member, and every token they hold, reaches only these.</p>
                <ul className="scope-list" aria-label="Limit to resources">
                  {resources.map((resource) => (
                    <li key={resource.id}>
                      <label className="scope">
                        <input
                          type="checkbox"
                          checked={limitedTo.includes(resource.id)}
                          onChange={(e) => setLimitedTo(e.target.checked ? [...limitedTo, resource.id] : limitedTo.filter((id) => id !== resource.id))}
                        />
                        <span>{resource.name}</span>
                        <span className="muted">{resource.type}</span>
                      </label>
                    </li>
                  ))}
                </ul>
                {problem?.fieldMessage('resources') && <p className="field-error">{problem.fieldMessage('resources')}</p>}
              </fieldset>
            )}
            <DialogFooter error={problem && problem.errors.length > 0 ? null : invite.error}>
              <button type="submit" className="button primary" disabled={invite.isPending}>
                Invite
              </button>
            </DialogFooter>
          </form>
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}

function RemoveMember({ member }: { member: Member }) {
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const isInvite = member.status === 'invited';
  const remove = useMutation({
    mutationFn: async () => unwrap(await api.DELETE('/api/v1/members/{userId}', { params: { path: { userId: memberId(member) } } })),
    onSuccess: () => setOpen(false),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ['members'] }),
  });
  return (
    <AlertDialog.Root open={open} onOpenChange={setOpen}>
      <AlertDialog.Trigger asChild>
        <button type="button" className="button small">
          {isInvite ? 'Withdraw' : 'Remove'}
        </button>
      </AlertDialog.Trigger>
      <AlertDialog.Portal>
        <AlertDialog.Overlay className="overlay" />
        <AlertDialog.Content className="dialog">
          <AlertDialog.Title>{isInvite ? `Withdraw the invitation of ${member.email}?` : `Remove ${member.email}?`}</AlertDialog.Title>
          <AlertDialog.Description>{isInvite ? 'The link stops working.' : 'They lose access to this organization, and their tokens here are revoked.'}</AlertDialog.Description>
          <DialogFooter error={remove.error} kind="alert">
            <button type="button" className="button danger" disabled={remove.isPending} onClick={() => remove.mutate()}>
              {isInvite ? 'Withdraw invitation' : 'Remove member'}
            </button>
          </DialogFooter>
        </AlertDialog.Content>
      </AlertDialog.Portal>
    </AlertDialog.Root>
  );
}
