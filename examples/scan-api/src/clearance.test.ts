import { describe, expect, it } from 'vitest';
import { decideClearance, type Clearance } from './clearance.ts';

describe('decideClearance', () => {
  const clearances: Clearance[] = [
    { group: 'res_day', decision: 'cleared' },
    { group: 'res_night', decision: 'denied' },
  ];

  it("takes the decision of the ranking's first group, whatever the scan's own order", () => {
    expect(decideClearance(['res_night', 'res_day'], clearances)).toEqual({ group: 'res_night', decision: 'denied' });
    expect(decideClearance(['res_day', 'res_night'], clearances)).toEqual({ group: 'res_day', decision: 'cleared' });
  });

  it('skips higher-ranked groups that have no decision for the scan', () => {
    expect(decideClearance(['res_audit', 'res_night'], clearances)).toEqual({ group: 'res_night', decision: 'denied' });
  });

  it('decides nothing when no group of the ranking has a decision', () => {
    expect(decideClearance(['res_audit'], clearances)).toBeUndefined();
    expect(decideClearance([], clearances)).toBeUndefined();
  });
});
