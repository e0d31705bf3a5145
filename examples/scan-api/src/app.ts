// The scan API: a small Fastify app protected with @keyward/sdk.
//
//   GET  /scans                  scans:read       the organization's scans
//   POST /scans                  scans:write      a new scan, with decisions for clearance groups the token may touch
//   GET  /scans/:id              scans:read       one scan
//   GET  /scans/:id/clearance    clearances:read  the decision of the token's highest-ranked clearance group
//   GET  /health                 public
//
// Keyward answers who is calling and what they may do; this app only decides
// what its own data means for them.
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { KeywardRequestError, KeywardUnavailableError, type Verifier } from '@keyward/sdk';
import { keyward, requireScope } from '@keyward/sdk/fastify';
import { decideClearance, type Clearance } from './clearance.ts';

export interface Scan {
  id: string;
  organizationId: string;
  target: string;
  /** `user:<id>` or `client:<id>`: the owner of the token that created the scan. */
  createdBy: string;
  createdAt: string;
  clearances: Clearance[];
}

export interface ScanApiOptions {
  verifier: Verifier;
  /** Fastify's logger option; off by default. */
  logger?: boolean;
}

type ProblemCode = 'validation_failed' | 'not_found' | 'forbidden' | 'service_unavailable' | 'internal';

const TITLE: Record<ProblemCode, string> = {
  validation_failed: 'Validation failed',
  not_found: 'Not found',
  forbidden: 'Forbidden',
  service_unavailable: 'Service unavailable',
  internal: 'Internal error',
};

/** Answers an RFC 9457 problem, shaped like Keyward's own refusals. */
function sendProblem(reply: FastifyReply, status: number, code: ProblemCode, detail: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'application/problem+json; charset=utf-8')
    .send(JSON.stringify({ type: `urn:keyward:problem:${code}`, title: TITLE[code], status, detail, code }));
}

const RESOURCE_ID = '^[a-z]{3}_[0-9A-Za-z]{1,64}$';
const ScanBody = {
  type: 'object',
  additionalProperties: false,
  required: ['target'],
  properties: {
    target: { type: 'string', minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:/_-]+$' },
    clearances: {
      type: 'array',
      maxItems: 20,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['group', 'decision'],
        properties: { group: { type: 'string', pattern: RESOURCE_ID }, decision: { enum: ['cleared', 'denied'] } },
      },
    },
  },
} as const;
const IdParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } } as const;

function scanView(scan: Scan) {
  return { id: scan.id, target: scan.target, createdBy: scan.createdBy, createdAt: scan.createdAt, groups: scan.clearances.map((clearance) => clearance.group) };
}

/** The bearer token the request presented (the keyward plugin has already accepted it). */
function presentedToken(request: FastifyRequest): string {
  const match = /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? '');
  if (!match?.[1]) throw new Error('no bearer token on an authenticated request');
  return match[1];
}

function clientIp(request: FastifyRequest): string {
  // The keyward plugin judged the same address, without Node's IPv4-mapped prefix.
  return request.ip.startsWith('::ffff:') && request.ip.includes('.') ? request.ip.slice(7) : request.ip;
}

export async function buildScanApi(options: ScanApiOptions): Promise<FastifyInstance> {
  const { verifier } = options;
  // Strict bodies: an unknown field is refused, not silently dropped.
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 16_384, ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } });
  /** Scans by id. In memory: the example is about access, not storage. */
  const scans = new Map<string, Scan>();

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof KeywardUnavailableError) return sendProblem(reply.header('retry-after', '5'), 503, 'service_unavailable', 'Token verification is unavailable; try again shortly.');
    const validation = (error as { validation?: unknown }).validation;
    if (validation) return sendProblem(reply, 400, 'validation_failed', error instanceof Error ? error.message : 'The request is not valid.');
    if (error instanceof KeywardRequestError) request.log.error({ err: error }, 'Keyward refused a question this app asked');
    else request.log.error({ err: error }, 'unexpected error');
    return sendProblem(reply, 500, 'internal', 'Unexpected error.');
  });
  app.setNotFoundHandler((_request, reply) => sendProblem(reply, 404, 'not_found', 'No such route.'));

  app.get('/health', async () => ({ status: 'ok' }));

  /**
   * Whether the token may touch a clearance group: decided from its ranked
   * grants when it lists some; a token without grants reaches every resource
   * its owner can, and only Keyward knows which those are, so it is asked
   * (cost 0: no second credit of a quota is spent).
   */
  async function mayTouch(request: FastifyRequest, group: string): Promise<boolean> {
    const token = request.keyward!;
    if (token.resources.length > 0) return token.resources.some((resource) => resource.id === group);
    const answer = await verifier.verify(presentedToken(request), { resource: group, ip: clientIp(request), cost: 0 });
    return answer.valid;
  }

  function scanOf(request: FastifyRequest<{ Params: { id: string } }>): Scan | undefined {
    const scan = scans.get(request.params.id);
    // Another organization's scan answers like a missing one, so ids cannot be probed.
    return scan && scan.organizationId === request.keyward!.organizationId ? scan : undefined;
  }

  // Everything registered in here needs a valid token; /health above does not.
  await app.register(async (api) => {
    await api.register(keyward, { verifier });

    api.get('/scans', { preHandler: requireScope('scans:read') }, async (request) => {
      const organizationId = request.keyward!.organizationId;
      return { items: [...scans.values()].filter((scan) => scan.organizationId === organizationId).map(scanView) };
    });

    api.post<{ Body: { target: string; clearances?: Clearance[] } }>('/scans', { preHandler: requireScope('scans:write'), schema: { body: ScanBody } }, async (request, reply) => {
      const clearances = request.body.clearances ?? [];
      const groups = new Set<string>();
      for (const { group } of clearances) {
        if (groups.has(group)) return sendProblem(reply, 400, 'validation_failed', `The clearance group ${group} is decided twice.`);
        groups.add(group);
        if (!(await mayTouch(request, group))) return sendProblem(reply, 403, 'forbidden', `The token may not decide for the clearance group ${group}.`);
      }
      const token = request.keyward!;
      const scan: Scan = {
        id: `scn_${randomUUID().replaceAll('-', '')}`,
        organizationId: token.organizationId,
        target: request.body.target,
        createdBy: `${token.owner.type}:${token.owner.id}`,
        createdAt: new Date().toISOString(),
        clearances,
      };
      scans.set(scan.id, scan);
      return reply.code(201).send(scanView(scan));
    });

    api.get<{ Params: { id: string } }>('/scans/:id', { preHandler: requireScope('scans:read'), schema: { params: IdParams } }, async (request, reply) => {
      const scan = scanOf(request);
      return scan ? scanView(scan) : sendProblem(reply, 404, 'not_found', 'No such scan.');
    });

    api.get<{ Params: { id: string } }>('/scans/:id/clearance', { preHandler: requireScope('clearances:read'), schema: { params: IdParams } }, async (request, reply) => {
      const scan = scanOf(request);
      if (!scan) return sendProblem(reply, 404, 'not_found', 'No such scan.');
      const token = request.keyward!;
      let decided: Clearance | undefined;
      if (token.resources.length > 0) {
        decided = decideClearance(token.resources.map((resource) => resource.id), scan.clearances);
      } else {
        // No ranking of its own: the scan's order, among the groups Keyward says the token reaches.
        for (const clearance of scan.clearances) {
          if (await mayTouch(request, clearance.group)) {
            decided = clearance;
            break;
          }
        }
      }
      if (!decided) return sendProblem(reply, 403, 'forbidden', 'None of the clearance groups the token may touch has a decision for this scan.');
      return { scan: scan.id, group: decided.group, decision: decided.decision };
    });
  });

  return app;
}
