// The public leak report for secret-scanning partners (issue 13): no Keyward
// token, but the partner's name and an HMAC-SHA256 signature over the
// timestamp and the raw body under that partner's secret, the scheme Keyward
// signs its own webhooks with. It revokes through the same core as
// /tokens/revoke-leaked, in every organization, and answers the same whether
// or not anything was live.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { UnauthenticatedError, revokeLeakedTokens } from '@keyward/core';
import type { FastifyRequest } from 'fastify';
import type { ScanningPartner } from '../../config/scanning-partners.ts';
import { createSecretScrubber } from '../../logging/logger.ts';
import { clientKeyOf, createAttemptLimiter } from '../../rate-limit/limiters.ts';
import { signatureMatches } from '../../webhooks/signature.ts';
import type { App, AppContext } from '../app-types.ts';
import { requestFacts } from '../authenticate.ts';
import { problemResponses } from '../openapi.ts';
import { setRateLimitHeaders } from '../rate-limit-headers.ts';
import { LeakReportResponse, PartnerLeakReportBody, PartnerSignatureHeaders } from '../schemas.ts';

export const PARTNER_REPORT_PATH = '/api/v1/secret-scanning/reports';

/**
 * The revocation work is rounded up to a multiple of this before the answer
 * goes: a report of a few strings takes one step whatever they were (measured:
 * about 16 ms with a live token, 4 ms without, on SQLite on a 2-core machine).
 */
export const ANSWER_STEP_MS = 250;

/** One answer for an unknown partner, a bad signature and a stale timestamp: which it was is no caller's business. */
const REFUSED = 'The report is not signed by a configured secret-scanning partner, or its signature is not current.';

export async function secretScanningRoutes(app: App, ctx: AppContext): Promise<void> {
  const { deps, config } = ctx;
  const { partners, toleranceSeconds, rateLimits } = config.secretScanning;
  const byName = new Map(partners.map((partner) => [partner.name, partner]));
  // An unknown name is checked against a secret nobody holds, so it costs what a known one does.
  const decoy = [randomBytes(32).toString('base64url')];
  const perIp = createAttemptLimiter('scanning-ip', rateLimits.perIp, ctx.redis?.connection);
  const perPartner = createAttemptLimiter('scanning-partner', rateLimits.perPartner, ctx.redis?.connection);
  const scrub = createSecretScrubber(config.prefixes);
  const rawBodies = new WeakMap<FastifyRequest, Buffer>();
  const reporters = new WeakMap<FastifyRequest, ScanningPartner>();

  // Its own scope: the signature covers the bytes as sent, so this route keeps them next to the parsed body.
  await app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    const parseJson = scope.getDefaultJsonParser('error', 'error');
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
      rawBodies.set(request, body as Buffer);
      parseJson(request, (body as Buffer).toString('utf8'), done);
    });

    scope.post(PARTNER_REPORT_PATH, {
      config: { auth: 'none' },
      schema: {
        tags: ['Secret scanning'],
        operationId: 'reportLeakedTokensAsPartner',
        summary: 'Report leaked tokens as a secret-scanning partner',
        description:
          'For code hosts and scanners the operator configured as partners: no Keyward token, but `Keyward-Partner` and a `Keyward-Signature` over `"<t>.<raw body>"` with your partner secret. ' +
          'Each live token listed is revoked in its own organization, audited naming you, and reported to its owners as `token.leaked` with the URL you give. ' +
          'The answer is the same whether or not any string was a live token. An unknown partner, a wrong signature and a stale timestamp all answer 401 alike. ' +
          'Limited per partner and per address (429 with Retry-After and RateLimit-* headers).',
        security: [],
        headers: PartnerSignatureHeaders,
        body: PartnerLeakReportBody,
        response: { 202: LeakReportResponse, ...problemResponses },
      },
      // Before the body is validated: an unauthenticated caller learns nothing about what a report looks like.
      preValidation: async (request, reply) => {
        // Counted before the signature is checked, so guessing costs attempts whether or not it succeeds.
        await perIp.consume(clientKeyOf(request.ip));
        const name = request.headers['keyward-partner'];
        const signature = request.headers['keyward-signature'];
        const partner = typeof name === 'string' ? byName.get(name) : undefined;
        const rawBody = rawBodies.get(request) ?? Buffer.alloc(0);
        const isSigned = typeof signature === 'string' && signatureMatches(signature, rawBody, partner?.secrets ?? decoy, deps.now(), toleranceSeconds);
        if (!partner || !isSigned) throw new UnauthenticatedError(REFUSED);
        setRateLimitHeaders(reply, await perPartner.consume(partner.name));
        reporters.set(request, partner);
      },
      handler: async (request, reply) => {
        const partner = reporters.get(request);
        if (!partner) throw new UnauthenticatedError(REFUSED);
        const findings = request.body.findings.map((finding) => ({
          token: finding.token,
          // A URL can carry the token itself (a query string): it goes to audit rows and webhooks redacted.
          url: finding.url === undefined ? null : scrub(finding.url),
          source: finding.source ?? null,
        }));
        const started = performance.now();
        await revokeLeakedTokens(deps, { partner: partner.name, request: requestFacts(request) }, findings);
        // Revoking a live token writes rows that a string matching nothing does not: answering at the next
        // step of ANSWER_STEP_MS hides that difference, so timing does not say what was live either.
        const elapsed = performance.now() - started;
        await sleep(Math.ceil(Math.max(elapsed, 1) / ANSWER_STEP_MS) * ANSWER_STEP_MS - elapsed);
        return reply.code(202).send({ received: findings.length });
      },
    });
  });
}
