import { InsufficientScopeError, UnauthenticatedError, generateToken } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { createSecretScrubber, REDACTED } from '../logging/logger.ts';
import { problem, quotedString, scrubProblem, wwwAuthenticate } from './problem.ts';

describe('wwwAuthenticate', () => {
  it('backslash-escapes a quote and a backslash in a scope name', () => {
    const challenge = wwwAuthenticate(new InsufficientScopeError('scans:"read\\all'), true);
    expect(challenge).toBe('Bearer realm="keyward", error="insufficient_scope", scope="scans:\\"read\\\\all"');
  });

  it('keeps a quoted description inside its parameter and drops CR and LF', () => {
    const challenge = wwwAuthenticate(new UnauthenticatedError('Send "Bearer <token>".\r\nSet-Cookie: x=1', 'invalid'), true);
    expect(challenge).toBe('Bearer realm="keyward", error="invalid_token", error_description="Send \\"Bearer <token>\\".Set-Cookie: x=1"');
  });
});

describe('quotedString', () => {
  it('drops control characters and replaces what is not ASCII, which Node would refuse in a header', () => {
    expect(quotedString('a\u0000b\tc\u007fd…e')).toBe('"abcd?e"');
  });
});

describe('scrubProblem', () => {
  const scrub = createSecretScrubber({ personal: 'kw_pat', client: 'kw_svc' });
  const token = generateToken('kw_pat');

  it('replaces a token in the detail, each field error and the instance', () => {
    const body = problem('validation_failed', `Unknown scope ${token}.`, {
      errors: [{ field: `metadata/${token}`, message: `${token} is not a scope` }],
      instance: `/api/v1/tokens/${token}`,
    });
    const scrubbed = scrubProblem(body, scrub);
    expect(JSON.stringify(scrubbed)).not.toContain(token);
    expect(scrubbed).toMatchObject({
      code: 'validation_failed',
      status: 400,
      detail: `Unknown scope ${REDACTED}.`,
      errors: [{ field: `metadata/${REDACTED}`, message: `${REDACTED} is not a scope` }],
      instance: `/api/v1/tokens/${REDACTED}`,
    });
  });

  it('leaves a problem without secrets as it was', () => {
    const body = problem('not_found', 'No such token.');
    expect(scrubProblem(body, scrub)).toEqual(body);
  });
});
