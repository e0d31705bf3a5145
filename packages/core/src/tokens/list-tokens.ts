import { NotFoundError } from '../errors.ts';
import { decodeCursor, DEFAULT_PAGE_LIMIT, toPage } from '../pagination.ts';
import type { TokenFilter } from '../ports/store.ts';
import { canViewToken, hasManagerScope, requirePermission, requireScope } from '../services/access.ts';
import type { ServiceDeps } from '../services/context.ts';
import type { Actor, Page, TokenRecord, TokenStatus } from '../types.ts';
import type { TokenKind } from './token-format.ts';

export interface ListTokensQuery {
  /** Every token of the organization (needs tokens:manage), not just the caller's. */
  all?: boolean | undefined;
  status?: TokenStatus | undefined;
  kind?: TokenKind | undefined;
  clientId?: string | undefined;
  cursor?: string | undefined;
  limit?: number | undefined;
}

export async function listTokens(deps: ServiceDeps, actor: Actor, query: ListTokensQuery): Promise<Page<TokenRecord>> {
  const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
  const filter: TokenFilter = {
    organizationId: actor.organizationId,
    status: query.status,
    kind: query.kind,
    clientId: query.clientId,
    now: deps.now(),
    after: decodeCursor(query.cursor),
    limit: limit + 1,
  };
  if (query.clientId !== undefined && hasManagerScope(actor, 'clients:manage')) {
    // Client admins see every service token of a client, as on /clients/{id}/tokens.
    filter.kind = 'client';
  } else if (query.all) {
    requireScope(actor, 'tokens:manage');
    requirePermission(actor, 'admin');
  } else if (actor.user && actor.token?.kind !== 'client') {
    filter.ownerUserId = actor.user.id;
  } else if (actor.token?.clientId) {
    // A service token's own tokens are its client's.
    filter.clientId = actor.token.clientId;
    filter.kind = 'client';
  }
  const rows = await deps.store.listTokens(filter);
  return toPage(rows, limit, (token) => ({ at: token.createdAt, id: token.id }));
}

/** Someone else's token answers exactly like a missing one, so ids cannot be probed. */
export async function getToken(deps: ServiceDeps, actor: Actor, tokenId: string): Promise<TokenRecord> {
  const token = await deps.store.findToken(actor.organizationId, tokenId);
  if (!token || !canViewToken(actor, token)) throw new NotFoundError('token');
  return token;
}

/** The token making the call (GET /tokens/current). */
export async function getCurrentToken(deps: ServiceDeps, actor: Actor): Promise<TokenRecord> {
  if (!actor.token) throw new NotFoundError('current token: this request was not made with a token');
  const token = await deps.store.findToken(actor.organizationId, actor.token.id);
  if (!token) throw new NotFoundError('token');
  return token;
}
