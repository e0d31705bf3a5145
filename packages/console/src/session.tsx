// Who is signed in, and in which organization. The session itself is the
// HTTP-only cookie; this keeps the CSRF token and the chosen organization in
// memory, so a reload asks GET /auth/session again instead of reading storage.
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react';
import { ApiProblem, api, setCsrfToken, setOrganization, unwrap, type Organization, type Session } from './api/client.ts';

interface SessionState {
  session: Session | null;
  isLoading: boolean;
  organization: Organization | null;
  switchOrganization(organizationId: string): void;
  /** After sign-in: the answer's CSRF token, then the session is read again. */
  signedIn(csrfToken: string): Promise<void>;
  signOut(): Promise<void>;
}

const SessionContext = createContext<SessionState | null>(null);

async function readSession(): Promise<Session | null> {
  try {
    const session = unwrap(await api.GET('/api/v1/auth/session'));
    setCsrfToken(session.csrfToken);
    return session;
  } catch (error) {
    // No cookie, or an ended session: the person signs in.
    if (error instanceof ApiProblem && (error.status === 401 || error.status === 404)) return null;
    throw error;
  }
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const query = useQuery({ queryKey: ['session'], queryFn: readSession, staleTime: Infinity, retry: false });
  const [chosen, setChosen] = useState<string | null>(null);
  const session = query.data ?? null;
  const organization = session ? (session.organizations.find((o) => o.id === (chosen ?? session.organizationId)) ?? session.organizations[0] ?? null) : null;
  setOrganization(organization?.id ?? null);

  const switchOrganization = useCallback(
    (organizationId: string) => {
      setOrganization(organizationId);
      setChosen(organizationId);
      // Every other answer belongs to the previous organization.
      queryClient.removeQueries({ predicate: (q) => q.queryKey[0] !== 'session' });
    },
    [queryClient],
  );
  const signedIn = useCallback(
    async (csrfToken: string) => {
      setCsrfToken(csrfToken);
      setChosen(null);
      queryClient.removeQueries({ predicate: (q) => q.queryKey[0] !== 'session' });
      await queryClient.invalidateQueries({ queryKey: ['session'] });
    },
    [queryClient],
  );
  const signOut = useCallback(async () => {
    await api.POST('/api/v1/auth/logout');
    setCsrfToken(null);
    setOrganization(null);
    setChosen(null);
    // The session query stays (its observer is this provider), answering null; every other answer goes.
    queryClient.setQueryData(['session'], null);
    queryClient.removeQueries({ predicate: (q) => q.queryKey[0] !== 'session' });
  }, [queryClient]);

  const value = useMemo(
    () => ({ session, isLoading: query.isLoading, organization, switchOrganization, signedIn, signOut }),
    [session, query.isLoading, organization, switchOrganization, signedIn, signOut],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionState {
  const state = useContext(SessionContext);
  if (!state) throw new Error('useSession outside SessionProvider');
  return state;
}
