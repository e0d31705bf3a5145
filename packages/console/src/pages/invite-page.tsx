// Accepting an invitation from its one-time link (/invite#<token>): a new
// person chooses a password and is signed in; someone with an account signs
// in and joins without a password (theirs never changes). The token is read
// from the fragment into memory and leaves the address bar at once.
import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import { ApiProblem, api, unwrap, type Session } from '../api/client.ts';
import { ErrorAlert } from '../components/dialog-footer.tsx';
import { Field } from '../components/field.tsx';
import { useFragmentSecret } from '../components/fragment-secret.ts';
import { NewPasswordFields, PublicCard, isPasswordRepeated, signInAfterwards } from '../components/public-card.tsx';
import { useSession } from '../session.tsx';

const GONE = 'This invitation link does not work: it has expired, been withdrawn, or been used already. Ask whoever invited you for a new one.';

/** What to tell the person about a failed acceptance; field problems are shown next to their fields instead. */
function messageOf(error: Error | null): string | null {
  if (!error) return null;
  if (!(error instanceof ApiProblem)) return error.message;
  // A token the server does not know, or one not even shaped like one (a link cut short).
  if (error.status === 404 || error.fieldMessage('inviteToken')) return GONE;
  if (error.status === 401 && error.code === 'unauthenticated') return 'The email or password is not right.';
  return isAboutTheForm(error) ? null : error.message;
}

function isAboutTheForm(problem: ApiProblem): boolean {
  return problem.fieldMessage('email') !== undefined || problem.fieldMessage('password') !== undefined;
}

export function InvitePage() {
  const { session, isLoading, signedIn, signOut, switchOrganization } = useSession();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const invite = useFragmentSecret();
  const [hasAccount, setHasAccount] = useState(false);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [repeated, setRepeated] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const [isPending, setPending] = useState(false);

  if (!invite.secret) {
    return (
      <PublicCard title="Join Keyward">
        <p className="error" role="alert">
          This address needs the invitation link exactly as you received it (it ends in <code>/invite#</code> and a code). Ask whoever invited you to send it again.
        </p>
        <p>
          Already a member? <Link to="/sign-in">Sign in</Link>.
        </p>
      </PublicCard>
    );
  }
  if (isLoading) return <p className="loading" role="status">Loading…</p>;

  async function run(work: () => Promise<void>) {
    setPending(true);
    setError(null);
    try {
      await work();
    } catch (caught) {
      setError(caught instanceof Error ? caught : new Error('Joining failed.'));
      // An email that already has an account signs in instead.
      if (caught instanceof ApiProblem && caught.status === 409 && !session) setHasAccount(true);
    } finally {
      setPassword('');
      setRepeated('');
      setPending(false);
    }
  }

  /** Accepts with the signed-in session (its CSRF token rides along), then opens the organization just joined. */
  async function acceptSignedIn(before: Array<{ id: string }>) {
    unwrap(await api.POST('/api/v1/auth/accept-invite', { body: { inviteToken: invite.secret } }));
    await queryClient.invalidateQueries({ queryKey: ['session'] });
    const after = queryClient.getQueryData<Session | null>(['session']);
    const known = new Set(before.map((o) => o.id));
    const joined = after?.organizations.find((o) => !known.has(o.id));
    if (joined) switchOrganization(joined.id);
    navigate('/tokens', { replace: true });
    invite.forget();
  }

  const submitNew = (event: FormEvent) => {
    event.preventDefault();
    const isRepeated = isPasswordRepeated(password, repeated);
    setMismatch(!isRepeated);
    if (!isRepeated) return;
    void run(async () => {
      unwrap(await api.POST('/api/v1/auth/accept-invite', { body: { inviteToken: invite.secret, password } }));
      await signInAfterwards(email, password, signedIn, navigate, 'You have joined. Sign in with the email address the invitation was sent to and the password you chose.');
      invite.forget();
    });
  };

  const submitExisting = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      const answer = unwrap(await api.POST('/api/v1/auth/login', { body: { email, password } }));
      await signedIn(answer.csrfToken);
      await acceptSignedIn(answer.organizations);
    });
  };

  const problem = error instanceof ApiProblem ? error : null;
  const message = messageOf(error);

  if (session) {
    return (
      <PublicCard title="Join an organization">
        <p>
          You are signed in as <strong>{session.user.email}</strong>. Accept the invitation for this account? Your password stays as it is.
        </p>
        <ErrorAlert error={message} />
        <div className="actions">
          <button
            type="button"
            className="button"
            disabled={isPending}
            onClick={() => {
              setError(null);
              void signOut();
            }}
          >
            Not you? Sign out
          </button>
          <button type="button" className="button primary" disabled={isPending} onClick={() => void run(() => acceptSignedIn(session.organizations))}>
            Join as {session.user.email}
          </button>
        </div>
      </PublicCard>
    );
  }

  if (hasAccount) {
    return (
      <PublicCard title="Join Keyward" onSubmit={submitExisting}>
        <p className="muted">Sign in as the person the invitation was sent to; your password stays as it is.</p>
        <Field label="Email" error={problem?.fieldMessage('email')}>
          <input type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </Field>
        <Field label="Password" error={problem?.fieldMessage('password')}>
          <input type="password" name="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </Field>
        <ErrorAlert error={message} />
        <button type="submit" className="button primary" disabled={isPending}>
          {isPending ? 'Joining…' : 'Sign in and join'}
        </button>
        <button type="button" className="button ghost" onClick={() => {
            setHasAccount(false);
            setError(null);
          }}>
          I am new to Keyward
        </button>
      </PublicCard>
    );
  }

  return (
    <PublicCard title="Join Keyward" onSubmit={submitNew}>
      <p className="muted">You were invited to an organization. Choose the password you will sign in with; this link works once.</p>
      <Field label="Email" hint="The address the invitation was sent to." error={problem?.fieldMessage('email')}>
        <input type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
      </Field>
      <NewPasswordFields password={password} repeated={repeated} error={problem?.fieldMessage('password')} mismatch={mismatch} onPassword={setPassword} onRepeated={setRepeated} />
      <ErrorAlert error={message} />
      <button type="submit" className="button primary" disabled={isPending}>
        {isPending ? 'Joining…' : 'Set password and join'}
      </button>
      <button type="button" className="button ghost" onClick={() => {
          setHasAccount(true);
          setError(null);
        }}>
        I already have a Keyward account
      </button>
    </PublicCard>
  );
}
