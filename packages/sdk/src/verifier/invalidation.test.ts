// The verifier's cache against a scripted Keyward (a fetch stub): which
// events drop which answers, and the fill guard against a slow lookup.
import { generateToken } from '../../../core/src/tokens/token-format.ts';
import { afterEach, describe, expect, it } from 'vitest';
import { createVerifier, type Verifier } from './create-verifier.ts';
import type { VerifiedToken, VerifyAnswer } from './verify-answer.ts';

function tokenOf(id: string, owner: VerifiedToken['owner']): VerifiedToken {
  return { id, name: id, kind: owner.type === 'user' ? 'personal' : 'client', owner, organizationId: 'org_1', scopes: [], permission: 'member', resources: [], expiresAt: null, metadata: {} };
}

/** A fetch stub: one event stream the test writes to, and /verify answers the test releases. */
function scriptedKeyward(answerFor: (presented: string) => VerifyAnswer) {
  const encoder = new TextEncoder();
  let stream: ReadableStreamDefaultController<Uint8Array> | undefined;
  let held: Array<() => void> | undefined;
  let verifyCalls = 0;
  const fetchStub: typeof fetch = async (input, init) => {
    if (String(input).endsWith('/api/v1/events')) {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          stream = controller;
          controller.enqueue(encoder.encode('retry: 2000\n\nid: b-0\nevent: ready\ndata: {}\n\n'));
        },
      });
      return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
    }
    verifyCalls++;
    const answer = answerFor((JSON.parse(String(init?.body)) as { token: string }).token);
    if (held) await new Promise<void>((release) => held!.push(release));
    return Response.json(answer);
  };
  return {
    fetch: fetchStub,
    get verifyCalls() {
      return verifyCalls;
    },
    /** Holds /verify answers until release() runs. */
    hold() {
      held = [];
    },
    release() {
      const waiting = held ?? [];
      held = undefined;
      for (const release of waiting) release();
    },
    async send(event: string, data: unknown, id: string) {
      stream!.enqueue(encoder.encode(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
      // Let the verifier read it.
      await new Promise((resolve) => setTimeout(resolve, 20));
    },
  };
}

describe('createVerifier invalidation', () => {
  const verifiers: Verifier[] = [];
  afterEach(async () => {
    for (const verifier of verifiers.splice(0)) await verifier.close();
  });

  const alice = generateToken('kw_pat');
  const bot = generateToken('kw_svc');
  const answers: Record<string, VerifyAnswer> = {
    [alice]: { valid: true, code: 'VALID', token: tokenOf('tok_alice', { type: 'user', id: 'usr_alice' }) },
    [bot]: { valid: true, code: 'VALID', token: tokenOf('tok_bot', { type: 'client', id: 'cli_bot' }) },
  };

  async function open() {
    const keyward = scriptedKeyward((presented) => answers[presented] ?? { valid: false, code: 'NOT_FOUND' });
    const verifier = createVerifier({ baseUrl: 'http://keyward.test', token: 'kw_svc_verify', fetch: keyward.fetch });
    verifiers.push(verifier);
    await verifier.whenStreamOpen();
    await verifier.verify(alice);
    await verifier.verify(bot);
    expect(keyward.verifyCalls).toBe(2);
    return { keyward, verifier };
  }

  it('drops answers about the changed tokens only', async () => {
    const { keyward, verifier } = await open();
    await keyward.send('invalidate', { type: 'tokens.changed', organizationId: 'org_1', tokenIds: ['tok_alice'] }, 'b-1');
    await verifier.verify(alice);
    await verifier.verify(bot);
    expect(keyward.verifyCalls).toBe(3);
  });

  it("drops a member's and a client's answers on member.changed and client.changed", async () => {
    const { keyward, verifier } = await open();
    await keyward.send('invalidate', { type: 'member.changed', organizationId: 'org_1', userId: 'usr_alice' }, 'b-1');
    await verifier.verify(bot);
    expect(keyward.verifyCalls).toBe(2);
    await verifier.verify(alice);
    expect(keyward.verifyCalls).toBe(3);
    await keyward.send('invalidate', { type: 'client.changed', organizationId: 'org_1', clientId: 'cli_bot' }, 'b-2');
    await verifier.verify(bot);
    expect(keyward.verifyCalls).toBe(4);
  });

  it('drops everything on organization.changed and on reset', async () => {
    const { keyward, verifier } = await open();
    await keyward.send('invalidate', { type: 'organization.changed', organizationId: 'org_1' }, 'b-1');
    await verifier.verify(alice);
    await verifier.verify(bot);
    expect(keyward.verifyCalls).toBe(4);
    await keyward.send('reset', { reason: 'gap' }, 'b-2');
    await verifier.verify(alice);
    await verifier.verify(bot);
    expect(keyward.verifyCalls).toBe(6);
  });

  it('does not cache an answer whose lookup began before an invalidation', async () => {
    const { keyward, verifier } = await open();
    await keyward.send('invalidate', { type: 'tokens.changed', organizationId: 'org_1', tokenIds: ['tok_alice'] }, 'b-1');
    keyward.hold();
    const slow = verifier.verify(alice);
    await new Promise((resolve) => setTimeout(resolve, 10));
    await keyward.send('invalidate', { type: 'tokens.changed', organizationId: 'org_1', tokenIds: ['tok_alice'] }, 'b-2');
    keyward.release();
    expect(await slow).toMatchObject({ code: 'VALID' });
    // The slow answer may predate the change: the next question goes to Keyward again.
    await verifier.verify(alice);
    expect(keyward.verifyCalls).toBe(4);
  });
});
