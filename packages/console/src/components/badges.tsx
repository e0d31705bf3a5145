import type { Role, TokenStatus } from '../api/client.ts';

const STATUS_TEXT: Record<TokenStatus, string> = { active: 'Active', expired: 'Expired', revoked: 'Revoked', disabled: 'Disabled' };

export function StatusBadge({ status }: { status: TokenStatus }) {
  return <span className={`badge status-${status}`}>{STATUS_TEXT[status]}</span>;
}

export function PermissionBadge({ permission }: { permission: Role }) {
  return (
    <span className={`badge permission-${permission}`} title="The most this token can do: its owner's role caps it">
      {permission}
    </span>
  );
}

export function ScopeChips({ scopes }: { scopes: string[] }) {
  if (scopes.length === 0) return <span className="muted">No scopes</span>;
  return (
    <ul className="chips" aria-label="Scopes">
      {scopes.map((scope) => (
        <li key={scope} className="chip">
          {scope}
        </li>
      ))}
    </ul>
  );
}
