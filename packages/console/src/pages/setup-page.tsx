// First run: the one-time setup link printed by `npm start` (/setup#<token>)
// creates the first owner and organization, then signs that person in. The
// server sends this address to sign-in once anyone exists.
import { useState, type FormEvent } from 'react';
import { Link, Navigate, useNavigate } from 'react-router';
import { ApiProblem, api, unwrap } from '../api/client.ts';
import { ErrorAlert } from '../components/dialog-footer.tsx';
import { Field } from '../components/field.tsx';
import { useFragmentSecret } from '../components/fragment-secret.ts';
import { NewPasswordFields, PublicCard, isPasswordRepeated, signInAfterwards } from '../components/public-card.tsx';
import { useSession } from '../session.tsx';

/** The organization's name as a slug: lower case, digits and single hyphens, at most 40 characters. */
export function slugOf(name: string): string {
  return name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, 40)
    .replace(/^-+|-+$/g, '');
}

export function SetupPage() {
  const { session, signedIn } = useSession();
  const navigate = useNavigate();
  const setup = useFragmentSecret();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [repeated, setRepeated] = useState('');
  const [organizationName, setOrganizationName] = useState('');
  const [slug, setSlug] = useState<string | null>(null);
  const [problem, setProblem] = useState<ApiProblem | Error | null>(null);
  const [mismatch, setMismatch] = useState(false);
  const [isPending, setPending] = useState(false);
  if (session) return <Navigate to="/tokens" replace />;
  const organizationSlug = slug ?? slugOf(organizationName);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setProblem(null);
    const isRepeated = isPasswordRepeated(password, repeated);
    setMismatch(!isRepeated);
    if (!isRepeated) return;
    setPending(true);
    try {
      unwrap(await api.POST('/api/v1/setup', { body: { setupToken: setup.secret, email, password, organizationName, organizationSlug } }));
      await signInAfterwards(email, password, signedIn, navigate, 'Keyward is set up. Sign in with the email and password you just chose.');
      setup.forget();
    } catch (caught) {
      setProblem(caught instanceof Error ? caught : new Error('Setting up failed.'));
    } finally {
      setPassword('');
      setRepeated('');
      setPending(false);
    }
  }

  if (!setup.secret) {
    return (
      <PublicCard title="Set up Keyward">
        <p className="error" role="alert">
          This address needs the one-time setup link exactly as the server printed it in its terminal when it started (it ends in <code>/setup#</code> and a code).
        </p>
        <p>
          Already set up? <Link to="/sign-in">Sign in</Link>.
        </p>
      </PublicCard>
    );
  }

  const apiProblem = problem instanceof ApiProblem ? problem : null;
  // A link from an earlier start, or Keyward set up meanwhile (by someone else, or by the environment).
  const isSpent = apiProblem?.status === 404 || apiProblem?.status === 409 || apiProblem?.fieldMessage('setupToken') !== undefined;
  const fieldError = (field: string) => apiProblem?.fieldMessage(field);
  const general = isSpent
    ? 'This setup link no longer works: Keyward is already set up, or the server has restarted since it printed the link (each start prints a new one while nobody exists).'
    : apiProblem && ['email', 'password', 'organizationName', 'organizationSlug'].some((field) => fieldError(field) !== undefined)
      ? null
      : problem;

  return (
    <PublicCard title="Set up Keyward" onSubmit={submit}>
      <p className="muted">Create the first owner and their organization. This link works once.</p>
      <Field label="Email" error={fieldError('email')}>
        <input type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
      </Field>
      <NewPasswordFields password={password} repeated={repeated} error={fieldError('password')} mismatch={mismatch} onPassword={setPassword} onRepeated={setRepeated} />
      <Field label="Organization name" hint="Your company or team; you can add more organizations later." error={fieldError('organizationName')}>
        <input type="text" name="organizationName" autoComplete="organization" required maxLength={100} value={organizationName} onChange={(e) => setOrganizationName(e.target.value)} />
      </Field>
      <Field label="Organization slug" hint="Lower-case letters, digits and hyphens, e.g. acme." error={fieldError('organizationSlug')}>
        <input type="text" name="organizationSlug" autoComplete="off" required maxLength={40} value={organizationSlug} onChange={(e) => setSlug(e.target.value)} />
      </Field>
      <ErrorAlert error={general} />
      {isSpent && (
        <p>
          <Link to="/sign-in">Go to sign-in</Link>
        </p>
      )}
      <button type="submit" className="button primary" disabled={isPending}>
        {isPending ? 'Setting up…' : 'Create owner and sign in'}
      </button>
    </PublicCard>
  );
}
