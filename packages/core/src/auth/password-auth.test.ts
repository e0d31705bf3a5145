import { describe, expect, it, vi } from 'vitest';
import type { PasswordHasher, Store } from '../ports/store.ts';
import type { ServiceDeps } from '../services/context.ts';
import { checkPassword } from './password-auth.ts';

/** Just enough of the deps for checkPassword: a store that knows nobody. */
function depsWith(passwords: PasswordHasher): ServiceDeps {
  const store = { findUserByEmail: async () => null } as unknown as Store;
  return { store, passwords, now: () => new Date('2026-01-05T10:00:00.000Z') } as unknown as ServiceDeps;
}

describe('checkPassword for an unknown email', () => {
  it('hashes the dummy password again after a failed hash, instead of failing every later sign-in', async () => {
    const hash = vi.fn<PasswordHasher['hash']>().mockRejectedValueOnce(new Error('out of memory')).mockResolvedValue('$dummy$hash');
    const verify = vi.fn<PasswordHasher['verify']>().mockResolvedValue(false);
    const deps = depsWith({ hash, verify });

    await expect(checkPassword(deps, 'nobody@example.com', 'a guess')).rejects.toThrow('out of memory');
    await expect(checkPassword(deps, 'nobody@example.com', 'a guess')).resolves.toBeNull();
    await expect(checkPassword(deps, 'someone@example.com', 'another guess')).resolves.toBeNull();

    // Retried once after the failure, then kept.
    expect(hash).toHaveBeenCalledTimes(2);
    expect(verify.mock.calls).toEqual([
      ['$dummy$hash', 'a guess'],
      ['$dummy$hash', 'another guess'],
    ]);
  });

  it('keeps one dummy hash per hasher, so one hasher never verifies against another one\'s hash', async () => {
    const first = { hash: vi.fn(async () => '$first$'), verify: vi.fn(async () => false) };
    const second = { hash: vi.fn(async () => '$second$'), verify: vi.fn(async () => false) };
    await checkPassword(depsWith(first), 'nobody@example.com', 'guess');
    await checkPassword(depsWith(second), 'nobody@example.com', 'guess');
    expect(first.verify).toHaveBeenCalledWith('$first$', 'guess');
    expect(second.verify).toHaveBeenCalledWith('$second$', 'guess');
  });
});
