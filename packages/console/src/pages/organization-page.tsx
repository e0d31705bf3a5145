// Organization settings for admins: the token policy every new token must
// meet (resources have their own page).
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { ApiProblem, api, unwrap, type Organization } from '../api/client.ts';
import { isRoleAtLeast } from '../api/roles.ts';
import { ErrorAlert } from '../components/dialog-footer.tsx';
import { Field } from '../components/field.tsx';
import { useSession } from '../session.tsx';

export function OrganizationPage() {
  const { organization } = useSession();
  if (!organization) return null;
  if (!isRoleAtLeast(organization.role, 'admin')) return <p>Only admins and owners change organization settings.</p>;
  return (
    <>
      <h1>{organization.name}</h1>
      <TokenPolicyForm key={organization.id} organization={organization} />
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
