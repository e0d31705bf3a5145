// The signed-in frame: header with the organization switcher and sign-out,
// navigation, and the page. Anyone not signed in is sent to /sign-in.
import { DropdownMenu } from 'radix-ui';
import { Navigate, NavLink, Outlet, useLocation, useNavigate } from 'react-router';
import { isRoleAtLeast } from '../api/roles.ts';
import { useSession } from '../session.tsx';

export function Layout() {
  const { session, isLoading, organization, switchOrganization, signOut } = useSession();
  const location = useLocation();
  const navigate = useNavigate();
  if (isLoading) return <p className="loading" role="status">Loading…</p>;
  if (!session) return <Navigate to="/sign-in" replace state={{ from: location.pathname }} />;

  return (
    <div className="frame">
      <header className="topbar">
        <a className="brand" href="/">Keyward</a>
        <DropdownMenu.Root>
          <DropdownMenu.Trigger className="button ghost" aria-label={`Organization: ${organization?.name ?? 'none'}. Switch organization`}>
            {organization?.name ?? 'No organization'} <span aria-hidden="true">▾</span>
          </DropdownMenu.Trigger>
          <DropdownMenu.Portal>
            <DropdownMenu.Content className="menu" align="start" sideOffset={4}>
              <DropdownMenu.Label className="menu-label">Organizations</DropdownMenu.Label>
              <DropdownMenu.RadioGroup value={organization?.id ?? ''} onValueChange={switchOrganization}>
                {session.organizations.map((o) => (
                  <DropdownMenu.RadioItem key={o.id} value={o.id} className="menu-item">
                    <DropdownMenu.ItemIndicator className="menu-check">✓</DropdownMenu.ItemIndicator>
                    {o.name} <span className="muted">· {o.role}</span>
                  </DropdownMenu.RadioItem>
                ))}
              </DropdownMenu.RadioGroup>
            </DropdownMenu.Content>
          </DropdownMenu.Portal>
        </DropdownMenu.Root>
        <nav aria-label="Main" className="nav">
          <NavLink to="/tokens">API tokens</NavLink>
          <NavLink to="/resources">Resources</NavLink>
          {organization && isRoleAtLeast(organization.role, 'admin') && (
            <>
              <NavLink to="/clients">API clients</NavLink>
              <NavLink to="/members">Members</NavLink>
              <NavLink to="/organization">Organization</NavLink>
              <NavLink to="/audit">Audit log</NavLink>
            </>
          )}
        </nav>
        <span className="spacer" />
        <span className="muted" title="Signed in as">{session.user.email}</span>
        <button
          type="button"
          className="button ghost"
          onClick={async () => {
            await signOut();
            navigate('/sign-in', { replace: true });
          }}
        >
          Sign out
        </button>
      </header>
      <main className="page">
        <Outlet />
      </main>
    </div>
  );
}
