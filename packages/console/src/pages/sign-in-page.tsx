// Sign-in with the session routes. The password stays in the form's own
// state only for the request, and is cleared whatever the answer.
import { useState, type FormEvent } from 'react';
import { Navigate, useLocation, useNavigate } from 'react-router';
import { ApiProblem, api, unwrap } from '../api/client.ts';
import { useFragmentSecret } from '../components/fragment-secret.ts';
import { PublicCard } from '../components/public-card.tsx';
import { useSession } from '../session.tsx';

export function SignInPage() {
  const { session, signedIn } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  // Sign-in has no use for a fragment: one arriving here (a spent setup link
  // the server redirected) leaves the address bar at once.
  useFragmentSecret();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [isPending, setPending] = useState(false);
  const state = location.state as { from?: string; notice?: string } | null;
  const from = state?.from ?? '/tokens';
  if (session) return <Navigate to={from} replace />;

  async function submit(event: FormEvent) {
    event.preventDefault();
    setPending(true);
    setError(null);
    try {
      const answer = unwrap(await api.POST('/api/v1/auth/login', { body: { email, password } }));
      setPassword('');
      await signedIn(answer.csrfToken);
      navigate(from, { replace: true });
    } catch (caught) {
      setPassword('');
      setError(caught instanceof ApiProblem && caught.status === 401 ? 'The email or password is not right.' : caught instanceof Error ? caught.message : 'Sign-in failed.');
    } finally {
      setPending(false);
    }
  }

  return (
    <PublicCard title="Sign in to Keyward" onSubmit={submit} browserValidation>
      {state?.notice && (
        <p className="notice" role="status">
          {state.notice}
        </p>
      )}
      <label className="field">
        <span>Email</span>
        <input type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
      </label>
      <label className="field">
        <span>Password</span>
        <input type="password" name="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <button type="submit" className="button primary" disabled={isPending}>
        {isPending ? 'Signing in…' : 'Sign in'}
      </button>
    </PublicCard>
  );
}
