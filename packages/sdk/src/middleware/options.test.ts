import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Id } from '../../../server/src/http/schemas.ts';
import { RESOURCE_ID_PATTERN, isResourceId } from './options.ts';

describe('isResourceId', () => {
  it("uses the server's id shape, so nothing the server would take is refused here", () => {
    expect(RESOURCE_ID_PATTERN.source).toBe((Id as { pattern?: string }).pattern);
  });

  it('takes ids the server makes, and refuses what cannot be one', () => {
    expect(isResourceId('res_6dTuD7MEIdUPHBTxcFrx')).toBe(true);
    for (const id of ['', ' ', 'res_', 'RES_abc', 'res-abc', 'res_abc ', ' res_abc', 'res_ab/c', `res_${'a'.repeat(65)}`, 'res_abc\n']) expect(isResourceId(id), JSON.stringify(id)).toBe(false);
    fc.assert(fc.property(fc.stringMatching(/^[a-z]{3}_[0-9A-Za-z]{1,64}$/), (id) => isResourceId(id)));
  });
});
