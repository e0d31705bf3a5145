// Whether the keyring in force can still verify the tokens the database holds.
// A keyring that lacks the secret a token was hashed under makes that token
// answer 401, with nothing else to show for it; start-up says so instead.
import type { Keyring } from '@keyward/core';
import type { Database } from '../storage/index.ts';

export interface KeyringCoverage {
  /** Live tokens (not revoked, not expired, not rotated out), disabled ones included: they can be enabled again. */
  liveTokens: number;
  /** Live tokens hashed under a version the keyring lacks. */
  strandedTokens: number;
  /** Those versions, with their live token counts. */
  missingVersions: Record<string, number>;
}

/** Live tokens per keyring version (`tokens.secret_version`); keys imported as a SHA-256 need no keyring secret. */
export async function countLiveTokensByVersion(database: Database, now: Date): Promise<Map<string, number>> {
  const rows = await database.db
    .selectFrom('tokens')
    .select(['secretVersion', (eb) => eb.fn.countAll<number>().as('count')])
    .where('revokedAt', 'is', null)
    .where('hashKind', '=', 'hmac')
    .where((eb) => eb.or([eb('expiresAt', 'is', null), eb('expiresAt', '>', now)]))
    .where((eb) => eb.or([eb('rotatedAt', 'is', null), eb('graceUntil', '>', now)]))
    .groupBy('secretVersion')
    .execute();
  return new Map(rows.map((row) => [row.secretVersion, Number(row.count)]));
}

export function keyringCoverage(keyring: Keyring, liveByVersion: Map<string, number>): KeyringCoverage {
  // Versions are labels like v2; the keyring refuses two that differ only in case.
  const known = new Set(keyring.all.map((secret) => secret.version.toLowerCase()));
  const missingVersions: Record<string, number> = {};
  let liveTokens = 0;
  let strandedTokens = 0;
  for (const [version, count] of liveByVersion) {
    liveTokens += count;
    if (known.has(version.toLowerCase())) continue;
    strandedTokens += count;
    missingVersions[version] = count;
  }
  return { liveTokens, strandedTokens, missingVersions };
}
