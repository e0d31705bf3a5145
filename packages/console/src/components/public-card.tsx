// The frame and parts of the pages a person sees before they are signed in:
// sign-in, first-run setup and invitation acceptance.
import { useId, type FormEvent, type ReactNode } from 'react';
import type { NavigateFunction } from 'react-router';
import { api } from '../api/client.ts';
import { Field } from './field.tsx';

/** A titled card; with onSubmit it is a form, checked by the server (noValidate) unless `browserValidation`. */
export function PublicCard({ title, onSubmit, browserValidation = false, children }: { title: string; onSubmit?: (event: FormEvent) => void; browserValidation?: boolean; children: ReactNode }) {
  const id = useId();
  const heading = <h1 id={`${id}-title`}>{title}</h1>;
  return (
    <main className="sign-in">
      {onSubmit ? (
        <form className="card" onSubmit={onSubmit} aria-labelledby={`${id}-title`} noValidate={!browserValidation}>
          {heading}
          {children}
        </form>
      ) : (
        <section className="card" aria-labelledby={`${id}-title`}>
          {heading}
          {children}
        </section>
      )}
    </main>
  );
}

export const MIN_PASSWORD_LENGTH = 12;

export function isPasswordRepeated(password: string, repeated: string): boolean {
  return password === repeated;
}

/** A new password typed twice: a typo would otherwise lock the person out of an account nobody else can reset. */
export function NewPasswordFields({
  password,
  repeated,
  error,
  mismatch,
  onPassword,
  onRepeated,
}: {
  password: string;
  repeated: string;
  error: string | undefined;
  mismatch: boolean;
  onPassword(value: string): void;
  onRepeated(value: string): void;
}) {
  return (
    <>
      <Field label="Password" hint={`At least ${MIN_PASSWORD_LENGTH} characters; a few words make a good one.`} error={error}>
        <input type="password" name="password" autoComplete="new-password" required minLength={MIN_PASSWORD_LENGTH} value={password} onChange={(e) => onPassword(e.target.value)} />
      </Field>
      <Field label="Repeat the password" error={mismatch ? 'The two passwords differ.' : undefined}>
        <input type="password" name="repeatPassword" autoComplete="new-password" required value={repeated} onChange={(e) => onRepeated(e.target.value)} />
      </Field>
    </>
  );
}

/**
 * Signs in with the credentials just set and opens the console; when that
 * fails (a mistyped email, say), the sign-in page says what happened instead.
 */
export async function signInAfterwards(email: string, password: string, signedIn: (csrfToken: string) => Promise<void>, navigate: NavigateFunction, notice: string): Promise<void> {
  const { data, response } = await api.POST('/api/v1/auth/login', { body: { email, password } });
  if (!response.ok || !data) {
    navigate('/sign-in', { replace: true, state: { notice } });
    return;
  }
  await signedIn(data.csrfToken);
  navigate('/tokens', { replace: true });
}

