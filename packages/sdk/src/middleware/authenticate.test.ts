// authenticate() with an app-level resource taken from the request: a
// recording verifier stands in for Keyward, so the test can say exactly which
// question was asked (the adapters' suite runs the same steps against a real server).
import { describe, expect, it } from 'vitest';
import type { Verifier } from '../verifier/create-verifier.ts';
import type { VerifyAnswer, VerifyQuestion } from '../verifier/verify-answer.ts';
import { authenticate } from './authenticate.ts';

const TOKEN = 'kw_pat_presented';
const VALID: VerifyAnswer = {
  valid: true,
  code: 'VALID',
  token: { id: 'tok_1', name: 'ci', kind: 'personal', owner: { type: 'user', id: 'usr_1' }, organizationId: 'org_1', scopes: ['scans:read'], permission: 'member', resources: [], expiresAt: null, metadata: {} },
};

function recording(answer: VerifyAnswer): { verifier: Verifier; questions: VerifyQuestion[] } {
  const questions: VerifyQuestion[] = [];
  const verifier = {
    streamState: 'off',
    async verify(_presented: string, question: VerifyQuestion = {}) {
      questions.push(question);
      return answer;
    },
    async close() {},
  } as unknown as Verifier;
  return { verifier, questions };
}

describe('authenticate with a resource from the request', () => {
  it('refuses an id that cannot name a resource with 403 forbidden, asking only about the token and spending nothing', async () => {
    const { verifier, questions } = recording(VALID);
    const outcome = await authenticate({ verifier, authorization: `Bearer ${TOKEN}`, resource: '../etc', cost: 3, ip: '203.0.113.9' });
    expect(outcome).toMatchObject({ accepted: false, refusal: { status: 403, body: { code: 'forbidden' } } });
    expect(questions).toHaveLength(1);
    expect(questions[0]).not.toHaveProperty('resource');
    expect(questions[0]).toMatchObject({ cost: 0, ip: '203.0.113.9' });
  });

  it('answers 401 for an invalid token even when the id is impossible too', async () => {
    const { verifier } = recording({ valid: false, code: 'REVOKED' });
    const outcome = await authenticate({ verifier, authorization: `Bearer ${TOKEN}`, resource: 'not an id', ip: undefined });
    expect(outcome).toMatchObject({ accepted: false, refusal: { status: 401, body: { code: 'unauthenticated' } } });
  });

  it('asks about a well-formed id, with the cost the route set', async () => {
    const { verifier, questions } = recording(VALID);
    const outcome = await authenticate({ verifier, authorization: `Bearer ${TOKEN}`, resource: 'res_abc123', cost: 2, ip: undefined });
    expect(outcome).toMatchObject({ accepted: true, token: { id: 'tok_1' } });
    expect(questions).toEqual([expect.objectContaining({ resource: 'res_abc123', cost: 2 })]);
  });
});
